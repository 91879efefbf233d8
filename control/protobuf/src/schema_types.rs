//! The shape of the generated schema table (`schema.rs`): what the protobuf decoder and the JSON
//! encoder need to know about each Kubernetes message, expressed in terms of the Go types that
//! define both of Kubernetes' encodings.

/// The Go field is a pointer: it is on the wire only when non-nil, so a zero value that arrives is
/// meaningful (`replicas: 0`, `automountServiceAccountToken: false`) and must be kept.
pub(crate) const POINTER: u8 = 1;
/// The Go JSON tag has `omitempty`: zero scalars, nil pointers and empty slices/maps are left out.
pub(crate) const OMITEMPTY: u8 = 2;
/// The Go JSON tag has `omitzero`: a zero struct (such as a zero `metav1.Time`) is left out.
pub(crate) const OMITZERO: u8 = 4;
/// An embedded struct without a JSON name: a nested message on the wire, flattened into the parent
/// object in JSON.
pub(crate) const INLINE: u8 = 8;

/// How a field is encoded on the wire and rendered in JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ty {
    /// `string` (and Go string types such as enums).
    Str,
    /// `bool`.
    Bool,
    /// `int32` (varint, negative numbers sign-extended to 64 bits).
    Int32,
    /// `int64`.
    Int64,
    /// `[]byte`: base64 in JSON.
    Bytes,
    /// Another message, by index into `MESSAGES`.
    Message(u16),
    /// `metav1.Time`: `{seconds, nanos}`, RFC 3339 with whole seconds in JSON.
    Time,
    /// `metav1.MicroTime`: `{seconds, nanos}`, RFC 3339 with microseconds in JSON.
    MicroTime,
    /// `metav1.Duration`: `{duration}` in nanoseconds, a Go duration string in JSON. No built-in
    /// kind uses it today; kept so that a table generated from another version can.
    #[allow(dead_code)]
    Duration,
    /// `resource.Quantity`: `{string}`, the string in JSON.
    Quantity,
    /// `intstr.IntOrString`: `{type, intVal, strVal}`, a number or a string in JSON.
    IntOrString,
    /// `runtime.RawExtension`: `{raw}`, the embedded JSON document in JSON.
    RawExtension,
    /// `metav1.FieldsV1`: `{Raw}`, the embedded JSON document in JSON.
    FieldsV1,
    /// A Go slice: a repeated field (scalars may be packed).
    Repeated(&'static Ty),
    /// A named Go slice type (such as `ExtraValue`): a message `{ repeated T items = 1; }` on the
    /// wire, a plain array in JSON.
    Wrapped(&'static Ty),
    /// A Go map with string keys: repeated `{key = 1, value = 2}` entries.
    Map(&'static Ty),
    /// `interface{}` (a `metav1.TableRow`'s cells): any JSON value. Only in JSON-only fields.
    Any,
}

/// One field of a message.
#[derive(Debug)]
pub(crate) struct Field {
    /// The protobuf field number; 0 for a field that is only in JSON (the embedded `TypeMeta`,
    /// `metav1.Table`'s fields).
    pub number: u32,
    /// The JSON key (empty for [`INLINE`] fields).
    pub json: &'static str,
    /// The wire and JSON shape.
    pub ty: Ty,
    /// [`POINTER`], [`OMITEMPTY`], [`OMITZERO`], [`INLINE`].
    pub flags: u8,
}

impl Field {
    /// Whether `flag` is set.
    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// A Go struct: its type name (for error messages and lookups) and its fields.
#[derive(Debug)]
pub(crate) struct Message {
    /// The Go type, such as `k8s.io/api/core/v1.PodSpec`.
    pub name: &'static str,
    /// Every field encoding/json sees, in Go declaration order (the order it writes them in).
    pub fields: &'static [Field],
    /// The indices into `fields` of the fields on the wire, sorted by their numbers.
    pub wire: &'static [u8],
}

impl Message {
    /// The index into `fields` of the field with this protobuf number.
    pub fn field_index(&self, number: u32) -> Option<usize> {
        self.wire
            .binary_search_by_key(&number, |&i| self.fields[usize::from(i)].number)
            .ok()
            .map(|w| usize::from(self.wire[w]))
    }
}

/// Builds a [`Field`]; short so that the generated table stays readable.
pub(crate) const fn field(number: u32, json: &'static str, ty: Ty, flags: u8) -> Field {
    Field {
        number,
        json,
        ty,
        flags,
    }
}
