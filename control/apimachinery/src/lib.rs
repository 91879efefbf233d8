//! Kubernetes API machinery without I/O, in the spirit of `k8s.io/apimachinery`: the rules and
//! algorithms the apiserver applies to objects, kept apart from HTTP and storage so they can be
//! unit-tested exhaustively.
#![deny(missing_docs)]

pub mod json;
pub mod managed_fields;
pub mod patch;
pub mod quantity;
pub mod selector;
pub mod validation;
