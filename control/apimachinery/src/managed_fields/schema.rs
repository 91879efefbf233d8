//! What server-side apply needs to know about a type: structured-merge-diff's schema, reduced
//! to the relationships that decide field ownership.
//!
//! This is the contract between the field-set algorithms (`fieldpath`, `typed`, `manager`) and
//! the tables that describe types (the built-in kinds' generated table, hand-written ones in
//! tests). Everything is `'static` so that a table is plain data.

/// A value's type as far as field ownership and merging go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Atom {
    /// A leaf owned as a whole: strings, numbers, booleans, and values whose inside is not
    /// tracked (quantities, int-or-string, times, byte strings).
    Scalar,
    /// An object with named fields (a Go struct), looked up with [`Schema::field`] under
    /// `name`. `atomic` (`+structType=atomic`): the object is owned and replaced as a whole.
    Struct {
        /// The type's name in the schema.
        name: &'static str,
        /// Owned and replaced as a whole.
        atomic: bool,
    },
    /// An object whose keys are data (a Go `map[string]T`, such as labels): each key is a
    /// field of its own unless `atomic` (`+mapType=atomic`).
    Map {
        /// The type of every value.
        values: &'static Atom,
        /// Owned and replaced as a whole.
        atomic: bool,
    },
    /// A list.
    List {
        /// The type of every item.
        items: &'static Atom,
        /// How items are identified.
        kind: ListKind,
    },
    /// Anything (`runtime.RawExtension`, JSON fields): typed from the value itself, as
    /// structured-merge-diff's deduced type does (objects field by field, lists atomic).
    Untyped,
}

/// How a list's items are identified (`x-kubernetes-list-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// The list is owned and replaced as a whole (the default for lists without a strategy).
    Atomic,
    /// A set of scalars: each value is an item of its own (`v:` path elements).
    Set,
    /// An associative list: items are objects identified by the values of these fields
    /// (`k:` path elements), as `x-kubernetes-list-map-keys` lists them.
    Map(&'static [&'static str]),
}

/// A source of type information.
pub trait Schema {
    /// The type of field `field` of the struct named `name`; `None` when the struct has no
    /// such field (or the schema does not know the struct).
    fn field(&self, name: &str, field: &str) -> Option<Atom>;

    /// The type of the top-level object of `kind` in `api_version` (`"apps/v1"`,
    /// `"Deployment"`); `None` for kinds the schema does not know.
    fn root(&self, api_version: &str, kind: &str) -> Option<Atom>;

    /// The default of field `field` of the struct named `name` when that field is a key of an
    /// associative list (`x-kubernetes-list-map-keys`): an item that omits the key is
    /// identified by the default instead (a port's `protocol` is `TCP`), as smd reads OpenAPI's
    /// `default`. Only string defaults exist among list keys; `None` when there is none.
    fn key_default(&self, _name: &str, _field: &str) -> Option<&'static str> {
        None
    }
}
