//! Server-side apply: field sets, field ownership by manager (`metadata.managedFields`) and the
//! apply and update algorithms, after Kubernetes' structured-merge-diff.

pub mod builtin;
#[rustfmt::skip]
mod builtin_table;
pub mod schema;
