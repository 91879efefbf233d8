//! `storage.k8s.io/v1`.

mod storageclasses;

pub use storageclasses::StorageClasses;
