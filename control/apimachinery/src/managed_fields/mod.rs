//! Server-side apply: field sets, field ownership by manager (`metadata.managedFields`) and the
//! apply and update algorithms, after Kubernetes' structured-merge-diff.
//!
//! - [`fieldpath`]: paths, sets of fields and their `FieldsV1` encoding.
//! - [`typed`]: values read through a [`schema::Schema`]: field sets, merge, removal, comparison.
//! - [`manager`]: `managedFields` entries and the apply and update operations with conflicts.
//! - [`value`]: smd's value order and Go's JSON spelling, shared by the others.

pub mod builtin;
#[rustfmt::skip]
mod builtin_table;
pub mod fieldpath;
pub mod manager;
pub mod schema;
pub mod typed;
pub mod value;

#[cfg(test)]
mod tests;
