//! The three patch formats the apiserver accepts on `PATCH` requests, applied to
//! [`serde_json::Value`] documents.
//!
//! | content type                                  | function                    |
//! |-----------------------------------------------|-----------------------------|
//! | `application/json-patch+json` (RFC 6902)      | [`json_patch`]              |
//! | `application/merge-patch+json` (RFC 7386)     | [`merge_patch`]             |
//! | `application/strategic-merge-patch+json`      | [`strategic_merge_patch`]   |
//!
//! Every function takes the stored object by reference and returns a new value, so a patch that
//! fails half-way leaves nothing behind: either the whole patch applies or the caller gets a
//! [`PatchError`] and keeps the object it had.
//!
//! # Limits
//!
//! A patch is client input, and its cost must stay near its size. A JSON patch has at most
//! 10,000 operations, its copies may add at most 3 MiB (kube-apiserver's limits, in
//! [`JsonPatchLimits`], checked before the work is done) and its result nests no deeper than a
//! JSON body can ([`MAX_NESTING_DEPTH`]). Merge patches cannot nest deeper than their inputs, and
//! a strategic merge patch finds list items by hash, so long lists merge in linear time.
//!
//! # Strategic merge patch
//!
//! A strategic merge patch looks like a merge patch (a partial object, `null` to delete a
//! field), but lists are not necessarily replaced as a whole. How a list is merged depends on the
//! field it sits in, which is why the function needs a [`PatchSchema`] and the name of the
//! document's type:
//!
//! * a list with [`ListStrategy::MergeByKey`] (for example a pod's `containers`, keyed by
//!   `name`) merges each patch item into the existing item with the same key, and appends items
//!   whose key is new;
//! * a list with [`ListStrategy::MergePrimitives`] (for example `metadata.finalizers`) becomes
//!   the union of the existing and the patch values;
//! * every other list, including every list of a type the schema does not know, is replaced by
//!   the patch's list.
//!
//! The patch can also carry directives, keys that start with `$`:
//!
//! | directive                                  | where                     | effect |
//! |--------------------------------------------|---------------------------|--------|
//! | `"$patch": "replace"`                      | in a map                  | the map becomes exactly the patch's map (minus directives) |
//! | `{"$patch": "replace"}`                    | as a list item            | the list becomes exactly the patch's other items |
//! | `"$patch": "delete"`                       | in a map                  | the map is removed from its parent |
//! | `{"<key>": "x", "$patch": "delete"}`       | as an item of a keyed list | the item whose merge key is `x` is removed |
//! | `"$patch": "merge"`                        | in a map or as a list item | the default behaviour, stated explicitly |
//! | `"$deleteFromPrimitiveList/<field>": [..]` | next to `<field>`         | removes these values from the primitive list `<field>` |
//! | `"$setElementOrder/<field>": [..]`         | next to `<field>`         | after merging, orders the items of `<field>` as listed; items not listed keep their relative order after the listed ones |
//! | `"$retainKeys": [..]`                      | in a map                  | drops every key of the existing map that is not listed (how `kubectl apply` switches a Deployment from `RollingUpdate` to `Recreate`) |
//!
//! Any other key starting with `$` is rejected with [`PatchError::UnknownDirective`].
//!
//! [`BuiltinSchema`] knows the patch strategies of the built-in Kubernetes kinds listed in
//! [`BuiltinSchema::KINDS`]; for any other type name it answers "nothing known", which makes
//! lists atomic and maps merge, the right behaviour for custom resources.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};

use serde_json::{Map, Value};

use crate::json::{self, Exceeded, MAX_NESTING_DEPTH};

/// Why a patch could not be applied.
///
/// [`PatchError::http_status`] tells which HTTP status the apiserver should answer with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// The patch body does not have the overall shape its patch type requires: a JSON patch
    /// that is not an array of operation objects, an operation without its `op`, `path`,
    /// `from` or `value` member, an unknown operation, a strategic merge patch that is not an
    /// object, or a directive that cannot be applied where it stands.
    #[error("invalid patch document: {0}")]
    InvalidPatch(String),

    /// A JSON Pointer (RFC 6901) in a JSON patch operation is malformed.
    #[error("invalid JSON pointer {pointer:?}: {reason}")]
    InvalidPointer {
        /// The pointer as written in the patch.
        pointer: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A JSON patch operation refers to a location that does not exist in the document.
    #[error("path {path:?} not found: {reason}")]
    PathNotFound {
        /// The pointer as written in the patch.
        path: String,
        /// Which part of the pointer could not be resolved, and why.
        reason: String,
    },

    /// A JSON patch `test` operation found a different value than the one it expected.
    #[error("test operation failed: value at {path:?} is {actual}, expected {expected}")]
    TestFailed {
        /// The pointer as written in the patch.
        path: String,
        /// The value the operation expected, as (possibly shortened) JSON text.
        expected: String,
        /// The value found in the document, as (possibly shortened) JSON text.
        actual: String,
    },

    /// A strategic merge patch uses a `$` key, or a `$patch` value, that is not a directive.
    #[error("unknown strategic merge patch directive {directive:?} at {path}")]
    UnknownDirective {
        /// The directive as written (for `$patch`, together with its value).
        directive: String,
        /// Where in the document the directive was found.
        path: String,
    },

    /// A strategic merge patch directive has a value of the wrong shape, or is used on a list
    /// that cannot honour it.
    #[error("invalid {directive} directive at {path}: {reason}")]
    InvalidDirective {
        /// The directive as written.
        directive: String,
        /// Where in the document the directive was found.
        path: String,
        /// What is wrong with it.
        reason: String,
    },

    /// An item of a list that is merged by key lacks that key (or is not an object), so it is
    /// impossible to tell which existing item it refers to.
    #[error("list item at {path} lacks the merge key {key:?}")]
    MissingMergeKey {
        /// Where in the document the list item was found.
        path: String,
        /// The merge key the list's schema declares.
        key: String,
    },

    /// A map carrying `$retainKeys` also sets a field that is not in that list, which would
    /// drop the very field the patch sets.
    #[error("field {field:?} at {path} is set by the patch but missing from its $retainKeys list")]
    RetainKeysMismatch {
        /// Where in the document the map was found.
        path: String,
        /// The field that is set but not retained.
        field: String,
    },

    /// A JSON patch has more operations than [`JsonPatchLimits::max_operations`]
    /// (kube-apiserver's `maxJSONPatchOperations`, with its message).
    #[error("The allowed maximum operations in a JSON patch is {limit}, got {count}")]
    TooManyOperations {
        /// The limit.
        limit: usize,
        /// How many operations the patch has.
        count: usize,
    },

    /// The `copy` operations of a JSON patch would add more than
    /// [`JsonPatchLimits::max_copy_bytes`] of JSON to the document (json-patch's
    /// `AccumulatedCopySizeError`); found before the copy that would exceed it is made.
    #[error(
        "Unable to complete the copy, the accumulated size increase of copy would exceed the limit {limit}"
    )]
    CopyLimitExceeded {
        /// The limit, in bytes of JSON.
        limit: usize,
    },

    /// A JSON patch would nest the document deeper than [`MAX_NESTING_DEPTH`] levels, which no
    /// JSON body can be and nothing stored may be.
    #[error("the patched object would nest deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },

    /// A JSON patch's adds and removes in arrays would move more elements than
    /// [`JsonPatchLimits::max_array_shifts`].
    #[error("the JSON patch would move more than {limit} array elements")]
    TooManyArrayShifts {
        /// The limit.
        limit: usize,
    },
}

impl PatchError {
    /// The HTTP status the apiserver should answer with: `400 Bad Request` when the patch
    /// document itself is malformed, whatever object it is applied to,
    /// `413 Request Entity Too Large` when it asks for more work than the limits allow, and
    /// `422 Unprocessable Entity` when a well-formed patch does not fit the stored object (a
    /// missing path, a failed `test`, a copy past the copy limit, as json-patch's errors are).
    pub fn http_status(&self) -> u16 {
        match self {
            PatchError::TooManyOperations { .. } | PatchError::TooManyArrayShifts { .. } => 413,
            PatchError::PathNotFound { .. }
            | PatchError::TestFailed { .. }
            | PatchError::CopyLimitExceeded { .. }
            | PatchError::TooDeep { .. } => 422,
            PatchError::InvalidPatch(_)
            | PatchError::InvalidPointer { .. }
            | PatchError::UnknownDirective { .. }
            | PatchError::InvalidDirective { .. }
            | PatchError::MissingMergeKey { .. }
            | PatchError::RetainKeysMismatch { .. } => 400,
        }
    }
}

/// JSON equality as the RFCs define it: numbers compare by value (`1` equals `1.0`), objects
/// compare regardless of member order, arrays compare element by element.
fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else if x.is_f64() || y.is_f64() {
                x.as_f64() == y.as_f64()
            } else {
                // One is a negative integer, the other an integer above i64::MAX.
                false
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

/// Renders a value for an error message, shortened so a large object cannot flood the reply.
/// The encoder stops once it has written enough, so a huge or deep value costs no more than a
/// short one (each level writes a byte, which bounds the encoder's recursion too).
fn brief(value: &Value) -> String {
    const LIMIT: usize = 120;
    /// Takes the first bytes written to it, then fails the write.
    struct Head(Vec<u8>);
    impl std::io::Write for Head {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let room = LIMIT + 1 - self.0.len();
            if room == 0 {
                return Err(std::io::Error::other("enough"));
            }
            let taken = buf.len().min(room);
            self.0.extend_from_slice(&buf[..taken]);
            Ok(taken)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut head = Head(Vec::with_capacity(LIMIT + 1));
    let _ = serde_json::to_writer(&mut head, value);
    let mut bytes = head.0;
    let long = bytes.len() > LIMIT;
    if long {
        // Back to the start of a character (UTF-8 continuation bytes are 0b10xxxxxx).
        let mut end = LIMIT;
        while end > 0 && bytes[end] & 0xc0 == 0x80 {
            end -= 1;
        }
        bytes.truncate(end);
    }
    let mut text = String::from_utf8(bytes).unwrap_or_default();
    if long {
        text.push('…');
    }
    text
}

/// The kind of a JSON value with its article, for messages ("an object").
fn type_word(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------------
// JSON Patch (RFC 6902) and JSON Pointer (RFC 6901)
// ---------------------------------------------------------------------------------------------

/// A parsed JSON Pointer: the text as written (for messages) and its unescaped reference tokens.
struct Pointer<'p> {
    text: &'p str,
    tokens: Vec<String>,
}

impl<'p> Pointer<'p> {
    fn parse(text: &'p str) -> Result<Self, PatchError> {
        if text.is_empty() {
            return Ok(Pointer {
                text,
                tokens: Vec::new(),
            });
        }
        let invalid = |reason: &str| PatchError::InvalidPointer {
            pointer: text.to_owned(),
            reason: reason.to_owned(),
        };
        let Some(rest) = text.strip_prefix('/') else {
            return Err(invalid("a non-empty pointer must start with '/'"));
        };
        let mut tokens = Vec::new();
        for raw in rest.split('/') {
            let mut token = String::with_capacity(raw.len());
            let mut chars = raw.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    token.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => token.push('~'),
                    Some('1') => token.push('/'),
                    _ => return Err(invalid("'~' must be followed by '0' or '1'")),
                }
            }
            tokens.push(token);
        }
        Ok(Pointer { text, tokens })
    }

    fn not_found(&self, reason: impl Into<String>) -> PatchError {
        PatchError::PathNotFound {
            path: self.text.to_owned(),
            reason: reason.into(),
        }
    }

    /// Whether `self` points strictly inside the value `other` points at.
    fn is_strictly_inside(&self, other: &Pointer<'_>) -> bool {
        self.tokens.len() > other.tokens.len() && self.tokens.starts_with(&other.tokens)
    }

    /// Resolves a reference token against an array of length `len`. `-` (the position after
    /// the last element) is only meaningful when `for_insert` is set.
    fn array_index(&self, token: &str, len: usize, for_insert: bool) -> Result<usize, PatchError> {
        if token == "-" {
            return if for_insert {
                Ok(len)
            } else {
                Err(self.not_found(
                    "'-' names the element after the end of the array, which does not exist",
                ))
            };
        }
        let well_formed = !token.is_empty()
            && token.bytes().all(|b| b.is_ascii_digit())
            && (token == "0" || !token.starts_with('0'));
        let index = if well_formed {
            token.parse::<usize>().ok()
        } else {
            None
        };
        let Some(index) = index else {
            return Err(self.not_found(format!("{token:?} is not a valid array index")));
        };
        let in_bounds = if for_insert {
            index <= len
        } else {
            index < len
        };
        if !in_bounds {
            return Err(self.not_found(format!(
                "index {index} is out of bounds for an array of length {len}"
            )));
        }
        Ok(index)
    }

    fn descend_failure(&self, token: &str, value: &Value) -> PatchError {
        match value {
            Value::Object(_) => self.not_found(format!("member {token:?} does not exist")),
            other => self.not_found(format!(
                "cannot look up {token:?} inside {}",
                type_word(other)
            )),
        }
    }

    fn resolve<'v>(&self, doc: &'v Value, depth: usize) -> Result<&'v Value, PatchError> {
        let mut current = doc;
        for token in &self.tokens[..depth] {
            current = match current {
                Value::Object(map) => match map.get(token) {
                    Some(next) => next,
                    None => return Err(self.descend_failure(token, current)),
                },
                Value::Array(items) => &items[self.array_index(token, items.len(), false)?],
                other => return Err(self.descend_failure(token, other)),
            };
        }
        Ok(current)
    }

    fn resolve_mut<'v>(
        &self,
        doc: &'v mut Value,
        depth: usize,
    ) -> Result<&'v mut Value, PatchError> {
        let mut current = doc;
        for token in &self.tokens[..depth] {
            current = match current {
                Value::Object(map) => match map.get_mut(token) {
                    Some(next) => next,
                    None => return Err(self.not_found(format!("member {token:?} does not exist"))),
                },
                Value::Array(items) => {
                    let index = self.array_index(token, items.len(), false)?;
                    &mut items[index]
                }
                other => return Err(self.descend_failure(token, other)),
            };
        }
        Ok(current)
    }

    fn get<'v>(&self, doc: &'v Value) -> Result<&'v Value, PatchError> {
        self.resolve(doc, self.tokens.len())
    }

    /// Adds `value` at this location. Whatever it displaces, and `value` itself when the add
    /// fails, is [`json::discard`]ed: a moved value may nest deeper than a plain drop can take.
    fn add(&self, doc: &mut Value, value: Value, budget: &mut Budget) -> Result<(), PatchError> {
        let Some((last, _)) = self.tokens.split_last() else {
            json::discard(std::mem::replace(doc, value));
            return Ok(());
        };
        let parent = match self.resolve_mut(doc, self.tokens.len() - 1) {
            Ok(parent) => parent,
            Err(err) => {
                json::discard(value);
                return Err(err);
            }
        };
        let placed = match parent {
            Value::Object(map) => {
                if let Some(displaced) = map.insert(last.clone(), value) {
                    json::discard(displaced);
                }
                return Ok(());
            }
            Value::Array(items) => self
                .array_index(last, items.len(), true)
                .and_then(|index| budget.shift(items.len() - index).map(|()| (items, index))),
            other => Err(self.not_found(format!("cannot add {last:?} to {}", type_word(other)))),
        };
        match placed {
            Ok((items, index)) => {
                items.insert(index, value);
                Ok(())
            }
            Err(err) => {
                json::discard(value);
                Err(err)
            }
        }
    }

    fn remove(&self, doc: &mut Value, budget: &mut Budget) -> Result<Value, PatchError> {
        let Some((last, _)) = self.tokens.split_last() else {
            return Err(PatchError::InvalidPatch(
                "the whole document cannot be removed".to_owned(),
            ));
        };
        match self.resolve_mut(doc, self.tokens.len() - 1)? {
            Value::Object(map) => map
                .remove(last)
                .ok_or_else(|| self.not_found(format!("member {last:?} does not exist"))),
            Value::Array(items) => {
                let index = self.array_index(last, items.len(), false)?;
                budget.shift(items.len() - index - 1)?;
                Ok(items.remove(index))
            }
            other => Err(self.descend_failure(last, other)),
        }
    }

    fn replace(&self, doc: &mut Value, value: Value) -> Result<(), PatchError> {
        let target = self.resolve_mut(doc, self.tokens.len())?;
        json::discard(std::mem::replace(target, value));
        Ok(())
    }
}

/// What one JSON patch may cost. The defaults are kube-apiserver's, plus a bound on array
/// shifting of skiff's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonPatchLimits {
    /// At most this many operations (kube-apiserver's `maxJSONPatchOperations`, 10,000).
    pub max_operations: usize,
    /// The `copy` operations may add at most this many bytes, counted as the copied values'
    /// JSON encoding (kube-apiserver's `JSONPatchMaxCopyBytes`, which is its maximum request
    /// body size, 3 MiB). Without it each copy of a value into itself doubles the document.
    pub max_copy_bytes: usize,
    /// Adding or removing an array element moves every element after it; all of a patch's adds
    /// and removes may move at most this many elements (64 Mi, a fraction of a second). Without
    /// it, 10,000 inserts at the front of a million-element array (all in one 3 MB body) take a
    /// core for seconds. Kubernetes has no such limit; no patch a client generates comes near it.
    pub max_array_shifts: usize,
}

impl JsonPatchLimits {
    /// kube-apiserver's limits.
    pub const KUBERNETES: JsonPatchLimits = JsonPatchLimits {
        max_operations: 10_000,
        max_copy_bytes: 3 * 1024 * 1024,
        max_array_shifts: 64 << 20,
    };
}

impl Default for JsonPatchLimits {
    fn default() -> Self {
        Self::KUBERNETES
    }
}

/// What a JSON patch has left of its [`JsonPatchLimits`] as its operations run.
struct Budget {
    limits: JsonPatchLimits,
    copy_bytes: usize,
    array_shifts: usize,
}

impl Budget {
    fn new(limits: JsonPatchLimits) -> Self {
        Budget {
            limits,
            copy_bytes: limits.max_copy_bytes,
            array_shifts: limits.max_array_shifts,
        }
    }

    /// Spends `moved` array element moves.
    fn shift(&mut self, moved: usize) -> Result<(), PatchError> {
        self.array_shifts =
            self.array_shifts
                .checked_sub(moved)
                .ok_or(PatchError::TooManyArrayShifts {
                    limit: self.limits.max_array_shifts,
                })?;
        Ok(())
    }

    /// Spends the size of `value`, about to be copied to `to`, before it is copied: the
    /// measuring stops at what is left, so neither memory nor time go past the limit. The copy
    /// must also leave the document within [`MAX_NESTING_DEPTH`] (it sits below as many levels
    /// as `to` has tokens), which keeps cloning it within the stack.
    fn copy(&mut self, value: &Value, to: &Pointer<'_>) -> Result<(), PatchError> {
        let too_deep = PatchError::TooDeep {
            limit: MAX_NESTING_DEPTH,
        };
        let depth_left = MAX_NESTING_DEPTH
            .checked_sub(to.tokens.len())
            .ok_or(too_deep.clone())?;
        match json::measure(value, self.copy_bytes, depth_left) {
            Ok(measured) => {
                self.copy_bytes -= measured.encoded_len;
                Ok(())
            }
            Err(Exceeded::Length) => Err(PatchError::CopyLimitExceeded {
                limit: self.limits.max_copy_bytes,
            }),
            Err(Exceeded::Depth) => Err(too_deep),
        }
    }
}

/// One parsed JSON patch operation.
enum Operation<'p> {
    Add {
        path: Pointer<'p>,
        value: &'p Value,
    },
    Remove {
        path: Pointer<'p>,
    },
    Replace {
        path: Pointer<'p>,
        value: &'p Value,
    },
    Move {
        from: Pointer<'p>,
        path: Pointer<'p>,
    },
    Copy {
        from: Pointer<'p>,
        path: Pointer<'p>,
    },
    Test {
        path: Pointer<'p>,
        value: &'p Value,
    },
}

impl<'p> Operation<'p> {
    fn parse(index: usize, raw: &'p Value) -> Result<Self, PatchError> {
        let invalid = |what: String| PatchError::InvalidPatch(format!("operation {index}: {what}"));
        let Value::Object(members) = raw else {
            return Err(invalid(format!(
                "expected an object, found {}",
                type_word(raw)
            )));
        };
        let pointer = |name: &str| -> Result<Pointer<'p>, PatchError> {
            match members.get(name) {
                Some(Value::String(text)) => Pointer::parse(text),
                Some(other) => Err(invalid(format!(
                    "member {name:?} must be a string, found {}",
                    type_word(other)
                ))),
                None => Err(invalid(format!("missing member {name:?}"))),
            }
        };
        // A missing "value" is an error, while an explicit `null` is a legitimate value.
        let value = || -> Result<&'p Value, PatchError> {
            members
                .get("value")
                .ok_or_else(|| invalid("missing member \"value\"".to_owned()))
        };
        let op = match members.get("op") {
            Some(Value::String(op)) => op.as_str(),
            Some(other) => {
                return Err(invalid(format!(
                    "member \"op\" must be a string, found {}",
                    type_word(other)
                )));
            }
            None => return Err(invalid("missing member \"op\"".to_owned())),
        };
        Ok(match op {
            "add" => Operation::Add {
                path: pointer("path")?,
                value: value()?,
            },
            "remove" => Operation::Remove {
                path: pointer("path")?,
            },
            "replace" => Operation::Replace {
                path: pointer("path")?,
                value: value()?,
            },
            "move" => Operation::Move {
                from: pointer("from")?,
                path: pointer("path")?,
            },
            "copy" => Operation::Copy {
                from: pointer("from")?,
                path: pointer("path")?,
            },
            "test" => Operation::Test {
                path: pointer("path")?,
                value: value()?,
            },
            other => return Err(invalid(format!("unknown operation {other:?}"))),
        })
    }

    fn apply(&self, doc: &mut Value, budget: &mut Budget) -> Result<(), PatchError> {
        match self {
            Operation::Add { path, value } => path.add(doc, (*value).clone(), budget),
            Operation::Remove { path } => path.remove(doc, budget).map(json::discard),
            Operation::Replace { path, value } => path.replace(doc, (*value).clone()),
            Operation::Move { from, path } => {
                if path.tokens == from.tokens {
                    // Moving a value onto itself changes nothing, but the value must exist.
                    return from.get(doc).map(drop);
                }
                if path.is_strictly_inside(from) {
                    return Err(PatchError::InvalidPatch(format!(
                        "cannot move {:?} into its own child {:?}",
                        from.text, path.text
                    )));
                }
                let value = from.remove(doc, budget)?;
                path.add(doc, value, budget)
            }
            Operation::Copy { from, path } => {
                let value = from.get(doc)?;
                budget.copy(value, path)?;
                let value = value.clone();
                path.add(doc, value, budget)
            }
            Operation::Test { path, value } => {
                let actual = path.get(doc)?;
                if json_equal(actual, value) {
                    Ok(())
                } else {
                    Err(PatchError::TestFailed {
                        path: path.text.to_owned(),
                        expected: brief(value),
                        actual: brief(actual),
                    })
                }
            }
        }
    }
}

/// Applies a JSON patch (RFC 6902, `application/json-patch+json`) to `doc`, within
/// kube-apiserver's [`JsonPatchLimits`].
///
/// `patch` must be an array of operation objects (`add`, `remove`, `replace`, `move`, `copy`,
/// `test`), each with a JSON Pointer `path` (and `from` for `move`/`copy`). The operations run in
/// order on a copy of `doc`; the first one that fails aborts the whole patch, so the result is
/// either every operation applied or an error. Members an operation does not use are ignored.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, PatchError> {
    json_patch_with_limits(doc, patch, &JsonPatchLimits::default())
}

/// [`json_patch`] within the given limits. The result nests at most [`MAX_NESTING_DEPTH`]
/// levels, whatever the limits.
pub fn json_patch_with_limits(
    doc: &Value,
    patch: &Value,
    limits: &JsonPatchLimits,
) -> Result<Value, PatchError> {
    let Value::Array(raw_operations) = patch else {
        return Err(PatchError::InvalidPatch(format!(
            "a JSON patch must be an array of operations, found {}",
            type_word(patch)
        )));
    };
    if raw_operations.len() > limits.max_operations {
        return Err(PatchError::TooManyOperations {
            limit: limits.max_operations,
            count: raw_operations.len(),
        });
    }
    let operations = raw_operations
        .iter()
        .enumerate()
        .map(|(index, raw)| Operation::parse(index, raw))
        .collect::<Result<Vec<_>, _>>()?;
    let mut result = doc.clone();
    let mut budget = Budget::new(*limits);
    let applied = operations
        .iter()
        .try_for_each(|operation| operation.apply(&mut result, &mut budget))
        .and_then(|()| {
            // Moves can deepen the document one level each, cheaply; checked once, at the end.
            json::measure(&result, usize::MAX, MAX_NESTING_DEPTH)
                .map(drop)
                .map_err(|_| PatchError::TooDeep {
                    limit: MAX_NESTING_DEPTH,
                })
        });
    match applied {
        Ok(()) => Ok(result),
        Err(err) => {
            json::discard(result);
            Err(err)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON Merge Patch (RFC 7386)
// ---------------------------------------------------------------------------------------------

/// Applies a JSON merge patch (RFC 7386, `application/merge-patch+json`) to `doc`.
///
/// An object patch merges member by member: a `null` member deletes that member, an object
/// member merges recursively, any other member replaces. A patch that is not an object
/// (including an array) replaces the whole document. Merging an object patch into something
/// that is not an object starts from an empty object. This cannot fail.
pub fn merge_patch(doc: &Value, patch: &Value) -> Value {
    if !patch.is_object() {
        return patch.clone();
    }
    merge_patch_into(doc.clone(), patch)
}

/// [`merge_patch`] on a target it owns, so each part of the document is copied at most once.
fn merge_patch_into(target: Value, patch: &Value) -> Value {
    let Value::Object(patch_members) = patch else {
        return patch.clone();
    };
    let mut members = match target {
        Value::Object(members) => members,
        _ => Map::new(),
    };
    for (key, patch_value) in patch_members {
        if patch_value.is_null() {
            members.remove(key);
            continue;
        }
        let existing = members.get_mut(key).map(std::mem::take).unwrap_or_default();
        members.insert(key.clone(), merge_patch_into(existing, patch_value));
    }
    Value::Object(members)
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch: schema
// ---------------------------------------------------------------------------------------------

/// How a list-valued field is combined with the list in a strategic merge patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListStrategy {
    /// The items are objects identified by the named key (`patchStrategy:"merge"` with
    /// `patchMergeKey`): a patch item merges into the existing item with the same key, or is
    /// appended when there is none.
    MergeByKey(&'static str),
    /// The items are primitives and the list is a set (`patchStrategy:"merge"` without a merge
    /// key): the result is the existing items followed by the patch's new ones.
    MergePrimitives,
    /// The patch's list replaces the existing list as a whole; this is also what happens to any
    /// list the schema says nothing about.
    Replace,
}

/// What a [`PatchSchema`] knows about one field of one type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldInfo {
    /// The type name of the field's value when it is an object, or of the list's items when it
    /// is a list of objects; `None` when the value's own fields need no schema (plain maps such
    /// as labels, or types whose lists are all atomic).
    pub type_name: Option<&'static str>,
    /// For a list-valued field, how it merges; `None` behaves like [`ListStrategy::Replace`].
    pub list: Option<ListStrategy>,
}

impl FieldInfo {
    /// An object-valued field whose own fields are looked up under `type_name`.
    pub const fn object(type_name: &'static str) -> Self {
        FieldInfo {
            type_name: Some(type_name),
            list: None,
        }
    }

    /// A list of `item_type` objects merged by `merge_key`.
    pub const fn merge_by_key(item_type: &'static str, merge_key: &'static str) -> Self {
        FieldInfo {
            type_name: Some(item_type),
            list: Some(ListStrategy::MergeByKey(merge_key)),
        }
    }

    /// A list of primitives merged as a set.
    pub const fn merge_primitives() -> Self {
        FieldInfo {
            type_name: None,
            list: Some(ListStrategy::MergePrimitives),
        }
    }

    /// A list that is always replaced as a whole (stated explicitly; unknown lists behave the
    /// same way).
    pub const fn replace() -> Self {
        FieldInfo {
            type_name: None,
            list: Some(ListStrategy::Replace),
        }
    }
}

/// The type information a strategic merge patch needs: for a field of a type, the type of its
/// value and, for lists, how to merge them.
///
/// Implementations answer `None` for anything they do not know; the patch then merges maps and
/// replaces lists below that point, which is the behaviour Kubernetes has for types without
/// patch metadata. The apiserver can wrap [`BuiltinSchema`] or supply its own tables.
pub trait PatchSchema {
    /// What is known about `field` of the type named `type_name`, if anything.
    fn field(&self, type_name: &str, field: &str) -> Option<FieldInfo>;
}

/// The patch strategies of the built-in Kubernetes kinds in [`BuiltinSchema::KINDS`], taken from
/// the `patchStrategy` / `patchMergeKey` tags of their API types.
///
/// Type names are the Go names of the API types (`"Deployment"`, `"PodSpec"`, `"Container"`,
/// ...); the root of a document is its kind. Fields that are not listed carry no strategy: their
/// lists are atomic, which matches the many lists Kubernetes declares atomic (tolerations,
/// Endpoints subsets, RBAC rules, ...).
#[derive(Debug, Clone, Copy, Default)]
pub struct BuiltinSchema;

impl BuiltinSchema {
    /// The kinds whose documents this schema describes.
    pub const KINDS: &'static [&'static str] = &[
        "Pod",
        "PodTemplate",
        "ReplicationController",
        "Deployment",
        "ReplicaSet",
        "StatefulSet",
        "DaemonSet",
        "Job",
        "CronJob",
        "Service",
        "Endpoints",
        "Node",
        "Namespace",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
        "PersistentVolume",
        "PersistentVolumeClaim",
        "Event",
        "LimitRange",
        "ResourceQuota",
        "EndpointSlice",
        "Lease",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "StorageClass",
        "Ingress",
        "IngressClass",
        "NetworkPolicy",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "PriorityClass",
        "ControllerRevision",
    ];

    /// Whether `kind` is one of the built-in kinds this schema describes. A strategic merge
    /// patch on any other kind (a custom resource, say) has no schema to go by.
    pub fn knows(kind: &str) -> bool {
        Self::KINDS.contains(&kind)
    }
}

impl PatchSchema for BuiltinSchema {
    fn field(&self, type_name: &str, field: &str) -> Option<FieldInfo> {
        builtin_field(type_name, field)
    }
}

fn builtin_field(type_name: &str, field: &str) -> Option<FieldInfo> {
    if field == "metadata"
        && (BuiltinSchema::knows(type_name)
            || matches!(type_name, "PodTemplateSpec" | "JobTemplateSpec"))
    {
        return Some(FieldInfo::object("ObjectMeta"));
    }
    let info = match (type_name, field) {
        // meta/v1 ObjectMeta
        ("ObjectMeta", "ownerReferences") => FieldInfo::merge_by_key("OwnerReference", "uid"),
        ("ObjectMeta", "finalizers") => FieldInfo::merge_primitives(),

        // Pods and the templates that nest a pod spec.
        ("Pod", "spec") | ("PodTemplateSpec", "spec") => FieldInfo::object("PodSpec"),
        ("Pod", "status") => FieldInfo::object("PodStatus"),
        ("PodTemplate", "template")
        | ("ReplicationControllerSpec", "template")
        | ("DeploymentSpec", "template")
        | ("ReplicaSetSpec", "template")
        | ("StatefulSetSpec", "template")
        | ("DaemonSetSpec", "template")
        | ("JobSpec", "template") => FieldInfo::object("PodTemplateSpec"),

        ("PodSpec", "containers") | ("PodSpec", "initContainers") => {
            FieldInfo::merge_by_key("Container", "name")
        }
        ("PodSpec", "ephemeralContainers") => FieldInfo::merge_by_key("EphemeralContainer", "name"),
        ("PodSpec", "volumes") => FieldInfo::merge_by_key("Volume", "name"),
        ("PodSpec", "imagePullSecrets") => FieldInfo::merge_by_key("LocalObjectReference", "name"),
        ("PodSpec", "hostAliases") => FieldInfo::merge_by_key("HostAlias", "ip"),
        ("PodSpec", "topologySpreadConstraints") => {
            FieldInfo::merge_by_key("TopologySpreadConstraint", "topologyKey")
        }
        ("PodSpec", "resourceClaims") => FieldInfo::merge_by_key("PodResourceClaim", "name"),
        ("PodSpec", "schedulingGates") => FieldInfo::merge_by_key("PodSchedulingGate", "name"),
        ("PodSpec", "tolerations") | ("PodSpec", "readinessGates") => FieldInfo::replace(),

        ("Container" | "EphemeralContainer", "ports") => {
            FieldInfo::merge_by_key("ContainerPort", "containerPort")
        }
        ("Container" | "EphemeralContainer", "env") => FieldInfo::merge_by_key("EnvVar", "name"),
        ("Container" | "EphemeralContainer", "volumeMounts") => {
            FieldInfo::merge_by_key("VolumeMount", "mountPath")
        }
        ("Container" | "EphemeralContainer", "volumeDevices") => {
            FieldInfo::merge_by_key("VolumeDevice", "devicePath")
        }

        ("PodStatus", "conditions") => FieldInfo::merge_by_key("PodCondition", "type"),
        ("PodStatus", "podIPs") => FieldInfo::merge_by_key("PodIP", "ip"),
        ("PodStatus", "hostIPs") => FieldInfo::merge_by_key("HostIP", "ip"),
        ("PodStatus", "resourceClaimStatuses") => {
            FieldInfo::merge_by_key("PodResourceClaimStatus", "name")
        }

        // Workloads.
        ("ReplicationController", "spec") => FieldInfo::object("ReplicationControllerSpec"),
        ("ReplicationController", "status") => FieldInfo::object("ReplicationControllerStatus"),
        ("Deployment", "spec") => FieldInfo::object("DeploymentSpec"),
        ("Deployment", "status") => FieldInfo::object("DeploymentStatus"),
        ("ReplicaSet", "spec") => FieldInfo::object("ReplicaSetSpec"),
        ("ReplicaSet", "status") => FieldInfo::object("ReplicaSetStatus"),
        ("StatefulSet", "spec") => FieldInfo::object("StatefulSetSpec"),
        ("StatefulSet", "status") => FieldInfo::object("StatefulSetStatus"),
        // No patch strategy in the API: claim templates are replaced as a whole.
        ("StatefulSetSpec", "volumeClaimTemplates") => FieldInfo::replace(),
        ("DaemonSet", "spec") => FieldInfo::object("DaemonSetSpec"),
        ("DaemonSet", "status") => FieldInfo::object("DaemonSetStatus"),
        ("Job", "spec") | ("JobTemplateSpec", "spec") => FieldInfo::object("JobSpec"),
        ("Job", "status") => FieldInfo::object("JobStatus"),
        ("CronJob", "spec") => FieldInfo::object("CronJobSpec"),
        ("CronJobSpec", "jobTemplate") => FieldInfo::object("JobTemplateSpec"),

        // Networking and cluster objects.
        ("Service", "spec") => FieldInfo::object("ServiceSpec"),
        ("Service", "status") => FieldInfo::object("ServiceStatus"),
        ("ServiceSpec", "ports") => FieldInfo::merge_by_key("ServicePort", "port"),
        ("Node", "spec") => FieldInfo::object("NodeSpec"),
        ("Node", "status") => FieldInfo::object("NodeStatus"),
        ("NodeSpec", "podCIDRs") => FieldInfo::merge_primitives(),
        ("NodeStatus", "addresses") => FieldInfo::merge_by_key("NodeAddress", "type"),
        ("Namespace", "status") => FieldInfo::object("NamespaceStatus"),
        ("ServiceAccount", "secrets") => FieldInfo::merge_by_key("ObjectReference", "name"),
        ("PersistentVolumeClaim", "status") => FieldInfo::object("PersistentVolumeClaimStatus"),
        ("HorizontalPodAutoscaler", "status") => FieldInfo::object("HorizontalPodAutoscalerStatus"),
        ("PodDisruptionBudget", "status") => FieldInfo::object("PodDisruptionBudgetStatus"),

        // Every status whose conditions are keyed by their type.
        (
            "ReplicationControllerStatus"
            | "DeploymentStatus"
            | "ReplicaSetStatus"
            | "StatefulSetStatus"
            | "DaemonSetStatus"
            | "JobStatus"
            | "ServiceStatus"
            | "NodeStatus"
            | "NamespaceStatus"
            | "PersistentVolumeClaimStatus"
            | "HorizontalPodAutoscalerStatus"
            | "PodDisruptionBudgetStatus",
            "conditions",
        ) => FieldInfo::merge_by_key("Condition", "type"),

        _ => return None,
    };
    Some(info)
}

// ---------------------------------------------------------------------------------------------
// Strategic merge patch: algorithm
// ---------------------------------------------------------------------------------------------

const PATCH_DIRECTIVE: &str = "$patch";
const RETAIN_KEYS_DIRECTIVE: &str = "$retainKeys";
const SET_ELEMENT_ORDER_PREFIX: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST_PREFIX: &str = "$deleteFromPrimitiveList/";

/// Applies a strategic merge patch (`application/strategic-merge-patch+json`) to `doc`, whose
/// type is named `root` in `schema` (for built-in objects, the kind: `"Deployment"`).
///
/// See the [module documentation](self) for the rules and the directives. `patch` must be a JSON
/// object; a `doc` that is not an object is treated as an empty one. A type the schema does not
/// know (for example a custom resource's kind with [`BuiltinSchema`]) gets the fallback
/// behaviour: maps merge, lists are replaced.
pub fn strategic_merge_patch(
    doc: &Value,
    patch: &Value,
    schema: &dyn PatchSchema,
    root: &str,
) -> Result<Value, PatchError> {
    let Value::Object(patch) = patch else {
        return Err(PatchError::InvalidPatch(format!(
            "a strategic merge patch must be an object, found {}",
            type_word(patch)
        )));
    };
    let original = match doc {
        Value::Object(members) => Some(members.clone()),
        _ => None,
    };
    let merger = Merger { schema };
    match merger.merge_map(original, patch, Some(root), &Location::ROOT)? {
        Some(merged) => Ok(Value::Object(merged)),
        None => Err(PatchError::InvalidPatch(
            "\"$patch\": \"delete\" cannot delete the whole document".to_owned(),
        )),
    }
}

/// One step from a value to a value inside it, for error messages.
#[derive(Clone, Copy)]
enum Step<'a> {
    Field(&'a str),
    Index(usize),
    Keyed(&'a str, &'a Value),
}

/// Where the merge currently is, as a chain of steps from the root; rendered only on error.
struct Location<'a> {
    parent: Option<&'a Location<'a>>,
    step: Option<Step<'a>>,
}

impl<'a> Location<'a> {
    const ROOT: Location<'static> = Location {
        parent: None,
        step: None,
    };

    fn child(&'a self, step: Step<'a>) -> Location<'a> {
        Location {
            parent: Some(self),
            step: Some(step),
        }
    }

    fn render(&self) -> String {
        let mut steps = Vec::new();
        let mut current = Some(self);
        while let Some(location) = current {
            steps.extend(location.step);
            current = location.parent;
        }
        if steps.is_empty() {
            return "the document root".to_owned();
        }
        let mut text = String::new();
        for step in steps.iter().rev() {
            match step {
                Step::Field(name) => {
                    if !text.is_empty() {
                        text.push('.');
                    }
                    text.push_str(name);
                }
                Step::Index(index) => text.push_str(&format!("[{index}]")),
                Step::Keyed(key, value) => text.push_str(&format!("[{key}={}]", brief(value))),
            }
        }
        text
    }
}

/// A `$patch` value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PatchDirective {
    Replace,
    Delete,
    Merge,
}

fn patch_directive(value: &Value, location: &Location<'_>) -> Result<PatchDirective, PatchError> {
    match value.as_str() {
        Some("replace") => Ok(PatchDirective::Replace),
        Some("delete") => Ok(PatchDirective::Delete),
        Some("merge") => Ok(PatchDirective::Merge),
        _ => Err(PatchError::UnknownDirective {
            directive: format!("{PATCH_DIRECTIVE}: {value}"),
            path: location.render(),
        }),
    }
}

/// The list a `$retainKeys`, `$setElementOrder/..` or `$deleteFromPrimitiveList/..` directive
/// carries.
fn directive_list<'v>(
    directive: &str,
    value: &'v Value,
    location: &Location<'_>,
) -> Result<&'v [Value], PatchError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(PatchError::InvalidDirective {
            directive: directive.to_owned(),
            path: location.render(),
            reason: format!("expected a list, found {}", type_word(other)),
        }),
    }
}

/// The merge key value of a list item, if it is an object carrying a non-null key.
fn merge_key_value<'v>(item: &'v Value, key: &str) -> Option<&'v Value> {
    item.as_object()
        .and_then(|members| members.get(key))
        .filter(|value| !value.is_null())
}

/// Finds values in a list by JSON equality ([`json_equal`]) in about constant time: merging a
/// long list looks up every patch item, and a scan per lookup made a 3 MB patch take minutes.
struct ValueIndex {
    hasher: RandomState,
    /// Positions by hash, each bucket ascending (positions are indexed in order).
    buckets: HashMap<u64, Vec<usize>>,
}

impl ValueIndex {
    fn new() -> Self {
        ValueIndex {
            hasher: RandomState::new(),
            buckets: HashMap::new(),
        }
    }

    /// An index of `values`' positions.
    fn of<'v>(values: impl IntoIterator<Item = &'v Value>) -> Self {
        let mut index = Self::new();
        for (position, value) in values.into_iter().enumerate() {
            index.insert(value, position);
        }
        index
    }

    /// A hash on which equal values agree: numbers hash by their value as a float (`1` and
    /// `1.0` are equal), arrays and objects only by their length (merge keys and primitive
    /// list items are scalars; a collision only costs a comparison).
    fn hash(&self, value: &Value) -> u64 {
        match value {
            Value::Null => self.hasher.hash_one(0u8),
            Value::Bool(b) => self.hasher.hash_one((1u8, b)),
            Value::Number(number) => {
                // -0.0 == 0.0, so both hash as 0.0.
                let float = number.as_f64().unwrap_or(0.0) + 0.0;
                self.hasher.hash_one((2u8, float.to_bits()))
            }
            Value::String(text) => self.hasher.hash_one((3u8, text)),
            Value::Array(items) => self.hasher.hash_one((4u8, items.len())),
            Value::Object(members) => self.hasher.hash_one((5u8, members.len())),
        }
    }

    /// Indexes `value` as the one at `position`, which must be past every indexed position.
    fn insert(&mut self, value: &Value, position: usize) {
        self.buckets
            .entry(self.hash(value))
            .or_default()
            .push(position);
    }

    /// The first indexed position whose value, as `value_at` tells it (`None` for a position
    /// gone since), equals `value`.
    fn find<'v>(
        &self,
        value: &Value,
        value_at: impl Fn(usize) -> Option<&'v Value>,
    ) -> Option<usize> {
        self.buckets
            .get(&self.hash(value))?
            .iter()
            .copied()
            .find(|&position| value_at(position).is_some_and(|found| json_equal(found, value)))
    }
}

/// Stable-sorts `items` by their rank; items without a rank go last, in their current order.
fn sort_by_rank(items: &mut Vec<Value>, rank: impl Fn(&Value) -> Option<usize>) {
    let mut ranked: Vec<(usize, Value)> = items
        .drain(..)
        .map(|item| (rank(&item).unwrap_or(usize::MAX), item))
        .collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    items.extend(ranked.into_iter().map(|(_, item)| item));
}

struct Merger<'s> {
    schema: &'s dyn PatchSchema,
}

impl Merger<'_> {
    /// Merges `patch` into the map `original` (absent when the field does not exist yet or
    /// holds a non-object). `None` means the map is to be deleted.
    fn merge_map(
        &self,
        original: Option<Map<String, Value>>,
        patch: &Map<String, Value>,
        type_name: Option<&str>,
        location: &Location<'_>,
    ) -> Result<Option<Map<String, Value>>, PatchError> {
        let directive = match patch.get(PATCH_DIRECTIVE) {
            Some(value) => patch_directive(value, location)?,
            None => PatchDirective::Merge,
        };
        let mut result = match directive {
            PatchDirective::Delete => return Ok(None),
            PatchDirective::Replace => Map::new(),
            PatchDirective::Merge => original.unwrap_or_default(),
        };

        // Sort the directives out first, so an unknown one fails before anything happens.
        let mut retain_keys = None;
        let mut element_orders = Vec::new();
        let mut deletions = Vec::new();
        for (key, value) in patch {
            if !key.starts_with('$') || key == PATCH_DIRECTIVE {
                continue;
            }
            if key == RETAIN_KEYS_DIRECTIVE {
                retain_keys = Some(value);
            } else if let Some(field) = key
                .strip_prefix(SET_ELEMENT_ORDER_PREFIX)
                .filter(|field| !field.is_empty())
            {
                element_orders.push((field, key, value));
            } else if let Some(field) = key
                .strip_prefix(DELETE_FROM_PRIMITIVE_LIST_PREFIX)
                .filter(|field| !field.is_empty())
            {
                deletions.push((field, key, value));
            } else {
                return Err(PatchError::UnknownDirective {
                    directive: key.clone(),
                    path: location.render(),
                });
            }
        }
        if let Some(value) = retain_keys {
            let listed = directive_list(RETAIN_KEYS_DIRECTIVE, value, location)?;
            let mut keep = HashSet::with_capacity(listed.len());
            for name in listed {
                let Some(name) = name.as_str() else {
                    return Err(PatchError::InvalidDirective {
                        directive: RETAIN_KEYS_DIRECTIVE.to_owned(),
                        path: location.render(),
                        reason: format!("expected field names, found {}", brief(name)),
                    });
                };
                keep.insert(name);
            }
            if let Some((field, _)) = patch.iter().find(|(key, value)| {
                !key.starts_with('$') && !value.is_null() && !keep.contains(&key.as_str())
            }) {
                return Err(PatchError::RetainKeysMismatch {
                    path: location.render(),
                    field: field.clone(),
                });
            }
            result.retain(|key, _| keep.contains(&key.as_str()));
        }

        for (field, directive, value) in deletions {
            let unwanted = directive_list(directive, value, location)?;
            if let Some(Value::Array(items)) = result.get_mut(field) {
                let gone = ValueIndex::of(unwanted);
                items.retain(|item| gone.find(item, |at| unwanted.get(at)).is_none());
            }
        }

        for (key, patch_value) in patch {
            if key.starts_with('$') {
                continue;
            }
            if patch_value.is_null() {
                result.remove(key);
                continue;
            }
            let info = type_name.and_then(|name| self.schema.field(name, key));
            let child = location.child(Step::Field(key));
            let existing = result.get_mut(key).map(std::mem::take);
            match self.merge_value(existing, patch_value, info, &child)? {
                Some(merged) => {
                    result.insert(key.clone(), merged);
                }
                None => {
                    result.remove(key);
                }
            }
        }

        for (field, directive, value) in element_orders {
            let order = directive_list(directive, value, location)?;
            let info = type_name.and_then(|name| self.schema.field(name, field));
            let strategy = info.and_then(|info| info.list);
            let order_location = location.child(Step::Field(directive));
            match strategy {
                Some(ListStrategy::MergeByKey(key)) => {
                    let mut wanted = Vec::with_capacity(order.len());
                    for (index, entry) in order.iter().enumerate() {
                        let Some(value) = merge_key_value(entry, key) else {
                            return Err(PatchError::MissingMergeKey {
                                path: order_location.child(Step::Index(index)).render(),
                                key: key.to_owned(),
                            });
                        };
                        wanted.push(value);
                    }
                    if let Some(Value::Array(items)) = result.get_mut(field) {
                        let ranks = ValueIndex::of(wanted.iter().copied());
                        sort_by_rank(items, |item| {
                            let value = merge_key_value(item, key)?;
                            ranks.find(value, |at| wanted.get(at).copied())
                        });
                    }
                }
                Some(ListStrategy::MergePrimitives) => {
                    if let Some(Value::Array(items)) = result.get_mut(field) {
                        let ranks = ValueIndex::of(order);
                        sort_by_rank(items, |item| ranks.find(item, |at| order.get(at)));
                    }
                }
                // A replaced list already has the order the patch gave it.
                Some(ListStrategy::Replace) | None => {}
            }
        }

        Ok(Some(result))
    }

    /// Merges one patch value into the existing value of a field. `None` means the field is to
    /// be removed.
    fn merge_value(
        &self,
        existing: Option<Value>,
        patch: &Value,
        info: Option<FieldInfo>,
        location: &Location<'_>,
    ) -> Result<Option<Value>, PatchError> {
        match patch {
            Value::Null => Ok(None),
            Value::Object(patch) => {
                let existing = match existing {
                    Some(Value::Object(members)) => Some(members),
                    _ => None,
                };
                let type_name = info.and_then(|info| info.type_name);
                Ok(self
                    .merge_map(existing, patch, type_name, location)?
                    .map(Value::Object))
            }
            Value::Array(patch) => {
                let existing = match existing {
                    Some(Value::Array(items)) => Some(items),
                    _ => None,
                };
                Ok(Some(Value::Array(
                    self.merge_list(existing, patch, info, location)?,
                )))
            }
            scalar => Ok(Some(scalar.clone())),
        }
    }

    fn merge_list(
        &self,
        existing: Option<Vec<Value>>,
        patch: &[Value],
        info: Option<FieldInfo>,
        location: &Location<'_>,
    ) -> Result<Vec<Value>, PatchError> {
        // Split the special items (`$patch` markers and deletions) from the ordinary ones.
        let mut replace = false;
        let mut deletions = Vec::new();
        let mut items = Vec::new();
        for (index, item) in patch.iter().enumerate() {
            if let Value::Object(members) = item
                && let Some(value) = members.get(PATCH_DIRECTIVE)
            {
                let item_location = location.child(Step::Index(index));
                match patch_directive(value, &item_location)? {
                    PatchDirective::Delete => {
                        deletions.push((index, item));
                        continue;
                    }
                    PatchDirective::Replace if members.len() == 1 => {
                        replace = true;
                        continue;
                    }
                    PatchDirective::Merge if members.len() == 1 => continue,
                    // With other fields, the directive is about the item's own map.
                    PatchDirective::Replace | PatchDirective::Merge => {}
                }
            }
            items.push((index, item));
        }

        let strategy = info
            .and_then(|info| info.list)
            .unwrap_or(ListStrategy::Replace);
        let item_type = info.and_then(|info| info.type_name);
        let cannot_delete = |reason: &str| PatchError::InvalidDirective {
            directive: format!("{PATCH_DIRECTIVE}: delete"),
            path: location.render(),
            reason: reason.to_owned(),
        };

        match strategy {
            ListStrategy::MergeByKey(key) => {
                let mut result = if replace {
                    Vec::new()
                } else {
                    existing.unwrap_or_default()
                };
                let mut doomed = Vec::with_capacity(deletions.len());
                for (index, item) in deletions {
                    let Some(key_value) = merge_key_value(item, key) else {
                        return Err(PatchError::MissingMergeKey {
                            path: location.child(Step::Index(index)).render(),
                            key: key.to_owned(),
                        });
                    };
                    doomed.push(key_value);
                }
                if !doomed.is_empty() {
                    let doomed_index = ValueIndex::of(doomed.iter().copied());
                    result.retain(|candidate| {
                        merge_key_value(candidate, key).is_none_or(|v| {
                            doomed_index.find(v, |at| doomed.get(at).copied()).is_none()
                        })
                    });
                }
                // The items by merge key; an item the patch deletes stays in place as a
                // tombstone until the end, so the positions indexed stay valid.
                let mut by_key = ValueIndex::new();
                for (position, item) in result.iter().enumerate() {
                    if let Some(key_value) = merge_key_value(item, key) {
                        by_key.insert(key_value, position);
                    }
                }
                let mut removed = vec![false; result.len()];
                for (index, item) in items {
                    let (Value::Object(patch_item), Some(wanted)) =
                        (item, merge_key_value(item, key))
                    else {
                        return Err(PatchError::MissingMergeKey {
                            path: location.child(Step::Index(index)).render(),
                            key: key.to_owned(),
                        });
                    };
                    let item_location = location.child(Step::Keyed(key, wanted));
                    let position = by_key.find(wanted, |at| {
                        (!removed[at])
                            .then(|| merge_key_value(&result[at], key))
                            .flatten()
                    });
                    match position {
                        Some(position) => {
                            let current = result[position].as_object_mut().map(std::mem::take);
                            match self.merge_map(current, patch_item, item_type, &item_location)? {
                                Some(merged) => result[position] = Value::Object(merged),
                                None => removed[position] = true,
                            }
                        }
                        None => {
                            if let Some(added) =
                                self.merge_map(None, patch_item, item_type, &item_location)?
                            {
                                let added = Value::Object(added);
                                if let Some(key_value) = merge_key_value(&added, key) {
                                    by_key.insert(key_value, result.len());
                                }
                                result.push(added);
                                removed.push(false);
                            }
                        }
                    }
                }
                if removed.contains(&true) {
                    let mut kept = removed.iter().map(|gone| !gone);
                    result.retain(|_| kept.next().unwrap_or(true));
                }
                Ok(result)
            }
            ListStrategy::MergePrimitives => {
                if !deletions.is_empty() {
                    return Err(cannot_delete(
                        "values of a list of primitives are removed with $deleteFromPrimitiveList/<field>",
                    ));
                }
                let mut result = if replace {
                    Vec::new()
                } else {
                    existing.unwrap_or_default()
                };
                let mut present = ValueIndex::of(&result);
                for (_, item) in items {
                    if present.find(item, |at| result.get(at)).is_none() {
                        present.insert(item, result.len());
                        result.push(item.clone());
                    }
                }
                Ok(result)
            }
            ListStrategy::Replace => {
                if !deletions.is_empty() {
                    return Err(cannot_delete(
                        "this list is replaced as a whole, so single items cannot be deleted",
                    ));
                }
                Ok(items.into_iter().map(|(_, item)| item.clone()).collect())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn smp(doc: &Value, patch: &Value, root: &str) -> Value {
        strategic_merge_patch(doc, patch, &BuiltinSchema, root)
            .unwrap_or_else(|err| panic!("strategic merge patch failed: {err}"))
    }

    fn smp_err(doc: &Value, patch: &Value, root: &str) -> PatchError {
        strategic_merge_patch(doc, patch, &BuiltinSchema, root)
            .expect_err("strategic merge patch should have failed")
    }

    fn jp(doc: &Value, patch: &Value) -> Value {
        json_patch(doc, patch).unwrap_or_else(|err| panic!("JSON patch failed: {err}"))
    }

    // ------------------------------------------------------------------ JSON patch (RFC 6902)

    #[test]
    fn json_patch_adds_an_object_member() {
        let doc = json!({"name": "web"});
        let patch = json!([{"op": "add", "path": "/image", "value": "nginx"}]);
        assert_eq!(jp(&doc, &patch), json!({"name": "web", "image": "nginx"}));
    }

    #[test]
    fn json_patch_add_inserts_into_an_array_before_the_index() {
        let doc = json!({"zones": ["a", "c"]});
        let patch = json!([{"op": "add", "path": "/zones/1", "value": "b"}]);
        assert_eq!(jp(&doc, &patch), json!({"zones": ["a", "b", "c"]}));
    }

    #[test]
    fn json_patch_add_with_dash_appends() {
        let doc = json!({"zones": ["a"]});
        let patch = json!([
            {"op": "add", "path": "/zones/-", "value": "b"},
            {"op": "add", "path": "/zones/2", "value": "c"}
        ]);
        assert_eq!(jp(&doc, &patch), json!({"zones": ["a", "b", "c"]}));
    }

    #[test]
    fn json_patch_add_replaces_an_existing_member() {
        let doc = json!({"replicas": 1});
        let patch = json!([{"op": "add", "path": "/replicas", "value": 3}]);
        assert_eq!(jp(&doc, &patch), json!({"replicas": 3}));
    }

    #[test]
    fn json_patch_adds_a_nested_object_and_an_array_value() {
        let doc = json!({"spec": {}});
        let patch = json!([
            {"op": "add", "path": "/spec/selector", "value": {"app": "web"}},
            {"op": "add", "path": "/spec/ports", "value": [80, 443]}
        ]);
        assert_eq!(
            jp(&doc, &patch),
            json!({"spec": {"selector": {"app": "web"}, "ports": [80, 443]}})
        );
    }

    #[test]
    fn json_patch_add_needs_an_existing_parent() {
        let doc = json!({"spec": {}});
        let patch = json!([{"op": "add", "path": "/status/phase", "value": "Running"}]);
        let err = json_patch(&doc, &patch).unwrap_err();
        assert!(
            matches!(err, PatchError::PathNotFound { ref path, .. } if path == "/status/phase")
        );
        assert_eq!(err.http_status(), 422);
    }

    #[test]
    fn json_patch_add_rejects_an_index_past_the_end() {
        let doc = json!({"zones": ["a"]});
        let patch = json!([{"op": "add", "path": "/zones/2", "value": "c"}]);
        assert!(matches!(
            json_patch(&doc, &patch),
            Err(PatchError::PathNotFound { .. })
        ));
    }

    #[test]
    fn json_patch_add_into_a_scalar_fails() {
        let doc = json!({"replicas": 3});
        let patch = json!([{"op": "add", "path": "/replicas/x", "value": 1}]);
        assert!(matches!(
            json_patch(&doc, &patch),
            Err(PatchError::PathNotFound { .. })
        ));
    }

    #[test]
    fn json_patch_add_at_the_root_replaces_the_document() {
        let doc = json!({"old": true});
        let patch = json!([{"op": "add", "path": "", "value": ["new"]}]);
        assert_eq!(jp(&doc, &patch), json!(["new"]));
    }

    #[test]
    fn json_patch_removes_an_object_member() {
        let doc = json!({"name": "web", "image": "nginx"});
        let patch = json!([{"op": "remove", "path": "/image"}]);
        assert_eq!(jp(&doc, &patch), json!({"name": "web"}));
    }

    #[test]
    fn json_patch_removes_an_array_element_and_shifts_the_rest() {
        let doc = json!({"args": ["-v", "--debug", "--port=80"]});
        let patch = json!([{"op": "remove", "path": "/args/1"}]);
        assert_eq!(jp(&doc, &patch), json!({"args": ["-v", "--port=80"]}));
    }

    #[test]
    fn json_patch_remove_of_a_missing_member_fails() {
        let doc = json!({"name": "web"});
        let patch = json!([{"op": "remove", "path": "/image"}]);
        assert!(matches!(
            json_patch(&doc, &patch),
            Err(PatchError::PathNotFound { .. })
        ));
    }

    #[test]
    fn json_patch_dash_names_no_existing_element() {
        let doc = json!({"args": ["a"]});
        for op in ["remove", "replace", "test"] {
            let patch = json!([{"op": op, "path": "/args/-", "value": "a"}]);
            assert!(
                matches!(
                    json_patch(&doc, &patch),
                    Err(PatchError::PathNotFound { .. })
                ),
                "{op} with '-' should fail"
            );
        }
    }

    #[test]
    fn json_patch_cannot_remove_the_root() {
        let doc = json!({"a": 1});
        let patch = json!([{"op": "remove", "path": ""}]);
        assert!(matches!(
            json_patch(&doc, &patch),
            Err(PatchError::InvalidPatch(_))
        ));
    }

    #[test]
    fn json_patch_replaces_a_value() {
        let doc = json!({"spec": {"replicas": 1, "paused": false}});
        let patch = json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]);
        assert_eq!(
            jp(&doc, &patch),
            json!({"spec": {"replicas": 5, "paused": false}})
        );
    }

    #[test]
    fn json_patch_replace_of_a_missing_member_fails() {
        let doc = json!({"spec": {}});
        let patch = json!([{"op": "replace", "path": "/spec/replicas", "value": 5}]);
        assert!(matches!(
            json_patch(&doc, &patch),
            Err(PatchError::PathNotFound { .. })
        ));
    }

    #[test]
    fn json_patch_replace_at_the_root_replaces_the_document() {
        let doc = json!({"a": 1});
        let patch = json!([{"op": "replace", "path": "", "value": {"b": 2}}]);
        assert_eq!(jp(&doc, &patch), json!({"b": 2}));
    }

    #[test]
    fn json_patch_moves_a_value_between_objects() {
        let doc = json!({"old": {"owner": "team-a", "keep": 1}, "new": {}});
        let patch = json!([{"op": "move", "from": "/old/owner", "path": "/new/owner"}]);
        assert_eq!(
            jp(&doc, &patch),
            json!({"old": {"keep": 1}, "new": {"owner": "team-a"}})
        );
    }

    #[test]
    fn json_patch_moves_an_array_element() {
        let doc = json!({"steps": ["build", "test", "lint", "ship"]});
        let patch = json!([{"op": "move", "from": "/steps/2", "path": "/steps/1"}]);
        assert_eq!(
            jp(&doc, &patch),
            json!({"steps": ["build", "lint", "test", "ship"]})
        );
    }

    #[test]
    fn json_patch_move_onto_itself_is_a_no_op_but_needs_the_value() {
        let doc = json!({"a": {"b": 1}});
        let patch = json!([{"op": "move", "from": "/a/b", "path": "/a/b"}]);
        assert_eq!(jp(&doc, &patch), doc);
        let patch = json!([{"op": "move", "from": "/a/c", "path": "/a/c"}]);
        assert!(matches!(
            json_patch(&doc, &patch),
            Err(PatchError::PathNotFound { .. })
        ));
    }

    #[test]
    fn json_patch_cannot_move_a_value_into_its_own_child() {
        let doc = json!({"a": {"b": {}}});
        let patch = json!([{"op": "move", "from": "/a", "path": "/a/b/c"}]);
        assert!(matches!(
            json_patch(&doc, &patch),
            Err(PatchError::InvalidPatch(_))
        ));
    }

    #[test]
    fn json_patch_copies_a_value() {
        let doc = json!({"labels": {"app": "web"}, "selector": {}});
        let patch = json!([{"op": "copy", "from": "/labels/app", "path": "/selector/app"}]);
        assert_eq!(
            jp(&doc, &patch),
            json!({"labels": {"app": "web"}, "selector": {"app": "web"}})
        );
    }

    #[test]
    fn json_patch_copy_from_a_missing_value_fails() {
        let doc = json!({});
        let patch = json!([{"op": "copy", "from": "/nothing", "path": "/here"}]);
        assert!(matches!(
            json_patch(&doc, &patch),
            Err(PatchError::PathNotFound { .. })
        ));
    }

    #[test]
    fn json_patch_test_compares_json_values_not_text() {
        let doc = json!({"n": 10, "ratio": 1.0, "obj": {"x": 1, "y": [1, 2]}, "nothing": null});
        let patch = json!([
            {"op": "test", "path": "/n", "value": 10.0},
            {"op": "test", "path": "/ratio", "value": 1},
            {"op": "test", "path": "/obj", "value": {"y": [1, 2], "x": 1}},
            {"op": "test", "path": "/nothing", "value": null}
        ]);
        assert_eq!(jp(&doc, &patch), doc);
    }

    #[test]
    fn json_patch_test_distinguishes_types_and_array_order() {
        let doc = json!({"n": 10, "list": [1, 2]});
        for (path, value) in [
            ("/n", json!("10")),
            ("/list", json!([2, 1])),
            ("/list", json!([1, 2, 3])),
        ] {
            let patch = json!([{"op": "test", "path": path, "value": value}]);
            let err = json_patch(&doc, &patch).unwrap_err();
            assert!(matches!(err, PatchError::TestFailed { .. }), "{err}");
        }
    }

    #[test]
    fn json_patch_failed_test_reports_both_values() {
        let doc = json!({"metadata": {"resourceVersion": "41"}});
        let patch = json!([{"op": "test", "path": "/metadata/resourceVersion", "value": "40"}]);
        let err = json_patch(&doc, &patch).unwrap_err();
        assert_eq!(
            err,
            PatchError::TestFailed {
                path: "/metadata/resourceVersion".into(),
                expected: "\"40\"".into(),
                actual: "\"41\"".into(),
            }
        );
        assert_eq!(err.http_status(), 422);
        assert!(err.to_string().contains("test operation failed"));
    }

    #[test]
    fn json_patch_failed_test_shortens_large_values() {
        // 3 MB of two-byte characters: the message gets the first 120 bytes, cut between
        // characters.
        let doc = json!({"a": "é".repeat(1_500_000)});
        let patch = json!([{"op": "test", "path": "/a", "value": "short"}]);
        let PatchError::TestFailed { actual, .. } = json_patch(&doc, &patch).unwrap_err() else {
            panic!("expected a failed test");
        };
        assert_eq!(actual, format!("\"{}…", "é".repeat(59)));
    }

    #[test]
    fn json_patch_is_all_or_nothing() {
        let doc = json!({"replicas": 1, "paused": false});
        let patch = json!([
            {"op": "replace", "path": "/replicas", "value": 9},
            {"op": "test", "path": "/paused", "value": true},
            {"op": "remove", "path": "/paused"}
        ]);
        assert!(json_patch(&doc, &patch).is_err());
        // The input is borrowed immutably, and no partial result escapes.
        assert_eq!(doc, json!({"replicas": 1, "paused": false}));
    }

    #[test]
    fn json_pointer_escapes_tilde_and_slash() {
        let doc = json!({"annotations": {"example.com/owner": "a", "x~y": "b"}});
        let patch = json!([
            {"op": "test", "path": "/annotations/example.com~1owner", "value": "a"},
            {"op": "replace", "path": "/annotations/x~0y", "value": "c"},
            {"op": "add", "path": "/annotations/app.kubernetes.io~1name", "value": "web"}
        ]);
        assert_eq!(
            jp(&doc, &patch),
            json!({"annotations": {
                "example.com/owner": "a",
                "x~y": "c",
                "app.kubernetes.io/name": "web"
            }})
        );
    }

    #[test]
    fn json_pointer_decodes_tilde_one_before_tilde_zero() {
        // "~01" is "~" followed by "1", not "/".
        let doc = json!({"~1": "literal", "/": "slash"});
        let patch = json!([{"op": "test", "path": "/~01", "value": "literal"}]);
        assert_eq!(jp(&doc, &patch), doc);
    }

    #[test]
    fn json_pointer_empty_token_is_the_empty_member_name() {
        let doc = json!({"": {"": 1}});
        let patch = json!([{"op": "replace", "path": "//", "value": 2}]);
        assert_eq!(jp(&doc, &patch), json!({"": {"": 2}}));
    }

    #[test]
    fn json_pointer_syntax_errors_are_rejected() {
        let doc = json!({"a": 1});
        for path in ["a", "/a~2", "/a~"] {
            let patch = json!([{"op": "remove", "path": path}]);
            let err = json_patch(&doc, &patch).unwrap_err();
            assert!(
                matches!(err, PatchError::InvalidPointer { .. }),
                "{path}: {err}"
            );
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn json_pointer_array_indexes_are_plain_decimals() {
        let doc = json!({"list": ["a", "b"]});
        for path in [
            "/list/01",
            "/list/+1",
            "/list/1.0",
            "/list/x",
            "/list/2",
            "/list/",
        ] {
            let patch = json!([{"op": "replace", "path": path, "value": "z"}]);
            assert!(
                matches!(
                    json_patch(&doc, &patch),
                    Err(PatchError::PathNotFound { .. })
                ),
                "{path} should not resolve"
            );
        }
        let patch = json!([{"op": "replace", "path": "/list/0", "value": "z"}]);
        assert_eq!(jp(&doc, &patch), json!({"list": ["z", "b"]}));
    }

    #[test]
    fn json_patch_ignores_members_an_operation_does_not_use() {
        let doc = json!({"a": 1});
        let patch = json!([{"op": "remove", "path": "/a", "value": 5, "comment": "bye"}]);
        assert_eq!(jp(&doc, &patch), json!({}));
    }

    #[test]
    fn json_patch_malformed_documents_are_bad_requests() {
        let doc = json!({"a": 1});
        let cases = [
            json!({"op": "remove", "path": "/a"}),
            json!(["remove"]),
            json!([{"path": "/a"}]),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"op": "add", "path": "/b"}]),
            json!([{"op": "move", "path": "/b"}]),
            json!([{"op": "copy", "from": 3, "path": "/b"}]),
            json!([{"op": "remove", "path": 7}]),
        ];
        for patch in cases {
            let err = json_patch(&doc, &patch).unwrap_err();
            assert!(matches!(err, PatchError::InvalidPatch(_)), "{patch}: {err}");
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn json_patch_explicit_null_value_is_allowed() {
        let doc = json!({"a": 1});
        let patch = json!([{"op": "add", "path": "/b", "value": null}]);
        assert_eq!(jp(&doc, &patch), json!({"a": 1, "b": null}));
    }

    #[test]
    fn json_patch_empty_patch_returns_the_document() {
        let doc = json!({"a": [1, 2]});
        assert_eq!(jp(&doc, &json!([])), doc);
    }

    // ------------------------------------------------------------------ merge patch (RFC 7386)

    #[test]
    fn merge_patch_changes_adds_and_deletes_members() {
        let doc = json!({
            "title": "Hello",
            "author": {"given": "Ada", "family": "Lovelace"},
            "tags": ["draft", "math"],
            "body": "..."
        });
        let patch = json!({
            "title": "Hi",
            "phone": "555-0100",
            "author": {"family": null},
            "tags": ["math"]
        });
        assert_eq!(
            merge_patch(&doc, &patch),
            json!({
                "title": "Hi",
                "author": {"given": "Ada"},
                "tags": ["math"],
                "body": "...",
                "phone": "555-0100"
            })
        );
    }

    #[test]
    fn merge_patch_rules_table() {
        // (document, patch, result), one rule per row.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
            (json!({"a": 1}), json!({}), json!({"a": 1})),
        ];
        for (doc, patch, expected) in cases {
            assert_eq!(merge_patch(&doc, &patch), expected, "{doc} + {patch}");
        }
    }

    #[test]
    fn merge_patch_cannot_merge_lists() {
        // Unlike a strategic merge patch, a merge patch always replaces lists.
        let doc = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let patch = json!({"spec": {"containers": [{"name": "a", "image": "x"}]}});
        assert_eq!(
            merge_patch(&doc, &patch),
            json!({"spec": {"containers": [{"name": "a", "image": "x"}]}})
        );
    }

    // ------------------------------------------------------------------ strategic merge patch

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "default",
                "labels": {"app": "web", "tier": "frontend"},
                "annotations": {"deployment.kubernetes.io/revision": "3"},
                "finalizers": ["example.com/protect"]
            },
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}
                },
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [
                            {
                                "name": "web",
                                "image": "nginx:1.25",
                                "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                "env": [
                                    {"name": "MODE", "value": "prod"},
                                    {"name": "DEBUG", "value": "0"}
                                ],
                                "terminationMessagePath": "/dev/termination-log",
                                "imagePullPolicy": "IfNotPresent"
                            },
                            {
                                "name": "metrics",
                                "image": "exporter:0.9",
                                "imagePullPolicy": "IfNotPresent"
                            }
                        ],
                        "tolerations": [
                            {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
                        ],
                        "volumes": [{"name": "cache", "emptyDir": {}}],
                        "restartPolicy": "Always"
                    }
                }
            },
            "status": {
                "replicas": 2,
                "conditions": [
                    {"type": "Available", "status": "True"},
                    {"type": "Progressing", "status": "True"}
                ]
            }
        })
    }

    fn containers(doc: &Value) -> &Vec<Value> {
        doc["spec"]["template"]["spec"]["containers"]
            .as_array()
            .expect("containers")
    }

    fn names(list: &[Value]) -> Vec<&str> {
        list.iter()
            .map(|item| item["name"].as_str().expect("name"))
            .collect()
    }

    #[test]
    fn smp_merges_a_container_by_name_and_keeps_the_others() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.27"}
        ]}}}});
        let result = smp(&deployment(), &patch, "Deployment");
        let list = containers(&result);
        assert_eq!(names(list), ["web", "metrics"]);
        assert_eq!(list[0]["image"], "nginx:1.27");
        // Fields the patch does not mention survive.
        assert_eq!(
            list[0]["ports"],
            json!([{"containerPort": 80, "protocol": "TCP"}])
        );
        assert_eq!(list[0]["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(
            list[1],
            deployment()["spec"]["template"]["spec"]["containers"][1]
        );
    }

    #[test]
    fn smp_appends_a_container_with_a_new_name() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "proxy", "image": "envoy:1.30"}
        ]}}}});
        let result = smp(&deployment(), &patch, "Deployment");
        let list = containers(&result);
        assert_eq!(names(list), ["web", "metrics", "proxy"]);
        assert_eq!(list[2], json!({"name": "proxy", "image": "envoy:1.30"}));
    }

    #[test]
    fn smp_deletes_a_container_with_the_delete_directive() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "metrics", "$patch": "delete"}
        ]}}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(names(containers(&result)), ["web"]);
    }

    #[test]
    fn smp_deleting_an_absent_item_is_a_no_op() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "ghost", "$patch": "delete"}
        ]}}}});
        assert_eq!(smp(&deployment(), &patch, "Deployment"), deployment());
    }

    #[test]
    fn smp_delete_directive_needs_the_merge_key() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "delete", "image": "exporter:0.9"}
        ]}}}});
        let err = smp_err(&deployment(), &patch, "Deployment");
        assert_eq!(
            err,
            PatchError::MissingMergeKey {
                path: "spec.template.spec.containers[0]".into(),
                key: "name".into(),
            }
        );
        assert_eq!(err.http_status(), 400);
    }

    #[test]
    fn smp_item_without_its_merge_key_is_rejected() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"image": "nginx:1.27"}
        ]}}}});
        let err = smp_err(&deployment(), &patch, "Deployment");
        assert!(matches!(err, PatchError::MissingMergeKey { ref key, .. } if key == "name"));
        let patch = json!({"spec": {"template": {"spec": {"containers": ["web"]}}}});
        assert!(matches!(
            smp_err(&deployment(), &patch, "Deployment"),
            PatchError::MissingMergeKey { .. }
        ));
    }

    #[test]
    fn smp_merges_env_vars_by_name_inside_a_template_container() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{
            "name": "web",
            "env": [
                {"name": "DEBUG", "value": "1"},
                {"name": "REGION", "value": "eu-west"}
            ]
        }]}}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            containers(&result)[0]["env"],
            json!([
                {"name": "MODE", "value": "prod"},
                {"name": "DEBUG", "value": "1"},
                {"name": "REGION", "value": "eu-west"}
            ])
        );
    }

    #[test]
    fn smp_null_deletes_a_field_inside_a_merged_item() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "imagePullPolicy": null}
        ]}}}});
        let result = smp(&deployment(), &patch, "Deployment");
        let web = containers(&result)[0].as_object().unwrap();
        assert!(!web.contains_key("imagePullPolicy"));
        assert_eq!(web["image"], "nginx:1.25");
    }

    #[test]
    fn smp_merges_container_ports_by_numeric_container_port() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [{
            "name": "web",
            "ports": [
                {"containerPort": 80, "name": "http"},
                {"containerPort": 443, "name": "https"}
            ]
        }]}}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            containers(&result)[0]["ports"],
            json!([
                {"containerPort": 80, "protocol": "TCP", "name": "http"},
                {"containerPort": 443, "name": "https"}
            ])
        );
    }

    #[test]
    fn smp_merges_finalizers_as_a_set() {
        let patch = json!({"metadata": {"finalizers": [
            "example.com/protect", "example.com/cleanup"
        ]}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            result["metadata"]["finalizers"],
            json!(["example.com/protect", "example.com/cleanup"])
        );
    }

    #[test]
    fn smp_delete_from_primitive_list_removes_finalizers() {
        let doc = json!({"metadata": {"name": "data", "finalizers": [
            "kubernetes.io/pvc-protection", "example.com/backup", "example.com/audit"
        ]}});
        let patch = json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["example.com/backup", "example.com/none"]
        }});
        let result = smp(&doc, &patch, "PersistentVolumeClaim");
        assert_eq!(
            result["metadata"]["finalizers"],
            json!(["kubernetes.io/pvc-protection", "example.com/audit"])
        );
    }

    #[test]
    fn smp_delete_from_primitive_list_runs_before_additions() {
        let doc = json!({"metadata": {"finalizers": ["a", "b"]}});
        let patch = json!({"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["a"],
            "finalizers": ["c"]
        }});
        let result = smp(&doc, &patch, "ConfigMap");
        assert_eq!(result["metadata"]["finalizers"], json!(["b", "c"]));
    }

    #[test]
    fn smp_delete_from_primitive_list_needs_a_list() {
        let doc = json!({"metadata": {"finalizers": ["a"]}});
        let patch = json!({"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}});
        let err = smp_err(&doc, &patch, "ConfigMap");
        assert!(matches!(err, PatchError::InvalidDirective { .. }), "{err}");
    }

    #[test]
    fn smp_primitive_list_items_cannot_use_the_delete_directive() {
        let doc = json!({"metadata": {"finalizers": ["a"]}});
        let patch = json!({"metadata": {"finalizers": [{"$patch": "delete"}]}});
        assert!(matches!(
            smp_err(&doc, &patch, "ConfigMap"),
            PatchError::InvalidDirective { .. }
        ));
    }

    #[test]
    fn smp_set_element_order_reorders_merged_containers() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "metrics"}, {"name": "web"}]
        }}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(names(containers(&result)), ["metrics", "web"]);
    }

    #[test]
    fn smp_set_element_order_places_new_items_and_keeps_unlisted_ones_after() {
        let mut doc = deployment();
        doc["spec"]["template"]["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({"name": "injected-sidecar", "image": "mesh:1"}));
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "proxy"}, {"name": "web"}, {"name": "metrics"}],
            "containers": [{"name": "proxy", "image": "envoy:1.30"}]
        }}}});
        let result = smp(&doc, &patch, "Deployment");
        assert_eq!(
            names(containers(&result)),
            ["proxy", "web", "metrics", "injected-sidecar"]
        );
    }

    #[test]
    fn smp_set_element_order_on_a_primitive_list() {
        let doc = json!({"metadata": {"finalizers": ["a", "b", "c"]}});
        let patch = json!({"metadata": {"$setElementOrder/finalizers": ["c", "a"]}});
        let result = smp(&doc, &patch, "Secret");
        assert_eq!(result["metadata"]["finalizers"], json!(["c", "a", "b"]));
    }

    #[test]
    fn smp_set_element_order_entries_need_the_merge_key() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"image": "x"}]
        }}}});
        assert!(matches!(
            smp_err(&deployment(), &patch, "Deployment"),
            PatchError::MissingMergeKey { .. }
        ));
    }

    #[test]
    fn smp_retain_keys_switches_a_deployment_to_recreate() {
        // What `kubectl apply` sends after `strategy: {type: Recreate}` replaced RollingUpdate.
        let patch = json!({"spec": {"strategy": {
            "$retainKeys": ["type"],
            "rollingUpdate": null,
            "type": "Recreate"
        }}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(result["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn smp_retain_keys_drops_unlisted_keys_even_without_nulls() {
        let patch = json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(result["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn smp_retain_keys_switches_a_volume_source() {
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/volumes": [{"name": "cache"}],
            "volumes": [{
                "$retainKeys": ["configMap", "name"],
                "configMap": {"name": "web-config"},
                "name": "cache"
            }]
        }}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            result["spec"]["template"]["spec"]["volumes"],
            json!([{"name": "cache", "configMap": {"name": "web-config"}}])
        );
    }

    #[test]
    fn smp_retain_keys_must_cover_the_fields_the_patch_sets() {
        let patch = json!({"spec": {"strategy": {
            "$retainKeys": ["type"],
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1}
        }}});
        let err = smp_err(&deployment(), &patch, "Deployment");
        assert_eq!(
            err,
            PatchError::RetainKeysMismatch {
                path: "spec.strategy".into(),
                field: "rollingUpdate".into(),
            }
        );
        let patch = json!({"spec": {"strategy": {"$retainKeys": "type"}}});
        assert!(matches!(
            smp_err(&deployment(), &patch, "Deployment"),
            PatchError::InvalidDirective { .. }
        ));
    }

    #[test]
    fn smp_replace_directive_as_a_list_item_replaces_the_list() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace"},
            {"name": "only", "image": "busybox"}
        ]}}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            containers(&result),
            &vec![json!({"name": "only", "image": "busybox"})]
        );
    }

    #[test]
    fn smp_replace_directive_in_a_map_replaces_the_map() {
        let patch = json!({"metadata": {"labels": {"$patch": "replace", "app": "api"}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(result["metadata"]["labels"], json!({"app": "api"}));
        // Siblings of the replaced map are untouched.
        assert_eq!(
            result["metadata"]["annotations"],
            json!({"deployment.kubernetes.io/revision": "3"})
        );
    }

    #[test]
    fn smp_replace_directive_on_a_keyed_item_replaces_only_that_item() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"$patch": "replace", "name": "web", "image": "caddy:2"}
        ]}}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            containers(&result)[0],
            json!({"name": "web", "image": "caddy:2"})
        );
        assert_eq!(names(containers(&result)), ["web", "metrics"]);
    }

    #[test]
    fn smp_delete_directive_in_a_map_removes_it() {
        let patch = json!({"spec": {"strategy": {"$patch": "delete"}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert!(result["spec"].get("strategy").is_none());
        assert_eq!(result["spec"]["replicas"], 2);
    }

    #[test]
    fn smp_delete_directive_cannot_remove_the_document() {
        let err = smp_err(&deployment(), &json!({"$patch": "delete"}), "Deployment");
        assert!(matches!(err, PatchError::InvalidPatch(_)));
    }

    #[test]
    fn smp_explicit_merge_directive_is_the_default() {
        let patch = json!({
            "metadata": {"labels": {"$patch": "merge", "version": "v2"}},
            "spec": {"template": {"spec": {"containers": [
                {"$patch": "merge"},
                {"name": "web", "$patch": "merge", "image": "nginx:1.27"}
            ]}}}
        });
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            result["metadata"]["labels"],
            json!({"app": "web", "tier": "frontend", "version": "v2"})
        );
        assert_eq!(names(containers(&result)), ["web", "metrics"]);
        assert_eq!(containers(&result)[0]["image"], "nginx:1.27");
        assert!(containers(&result)[0].get("$patch").is_none());
    }

    #[test]
    fn smp_labels_merge_and_null_deletes_like_kubectl_label() {
        // `kubectl label deployment web version=v2 tier-` sends exactly this.
        let patch = json!({"metadata": {"labels": {"version": "v2", "tier": null}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            result["metadata"]["labels"],
            json!({"app": "web", "version": "v2"})
        );
    }

    #[test]
    fn smp_annotations_merge_like_kubectl_annotate() {
        let patch = json!({"metadata": {"annotations": {"example.com/on-call": "team-a"}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            result["metadata"]["annotations"],
            json!({
                "deployment.kubernetes.io/revision": "3",
                "example.com/on-call": "team-a"
            })
        );
    }

    #[test]
    fn smp_scale_patch_only_touches_replicas() {
        let result = smp(
            &deployment(),
            &json!({"spec": {"replicas": 7}}),
            "Deployment",
        );
        let mut expected = deployment();
        expected["spec"]["replicas"] = json!(7);
        assert_eq!(result, expected);
    }

    #[test]
    fn smp_atomic_lists_of_known_kinds_are_replaced() {
        let patch = json!({"spec": {"template": {"spec": {"tolerations": [
            {"key": "gpu", "operator": "Exists"}
        ]}}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            result["spec"]["template"]["spec"]["tolerations"],
            json!([{"key": "gpu", "operator": "Exists"}])
        );
    }

    #[test]
    fn smp_atomic_lists_reject_per_item_deletes() {
        let patch = json!({"spec": {"template": {"spec": {"tolerations": [
            {"key": "dedicated", "$patch": "delete"}
        ]}}}});
        assert!(matches!(
            smp_err(&deployment(), &patch, "Deployment"),
            PatchError::InvalidDirective { .. }
        ));
    }

    #[test]
    fn smp_merge_lists_ignore_an_empty_patch_list() {
        let patch = json!({"spec": {"template": {"spec": {"containers": []}}}});
        assert_eq!(smp(&deployment(), &patch, "Deployment"), deployment());
    }

    #[test]
    fn smp_service_ports_merge_by_port() {
        let doc = json!({
            "kind": "Service",
            "spec": {
                "type": "ClusterIP",
                "clusterIP": "10.96.0.20",
                "selector": {"app": "web"},
                "ports": [
                    {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"},
                    {"name": "https", "port": 443, "targetPort": 8443, "protocol": "TCP"}
                ]
            }
        });
        let patch = json!({"spec": {"ports": [
            {"port": 80, "targetPort": 9090},
            {"port": 9100, "name": "metrics"},
            {"port": 443, "$patch": "delete"}
        ]}});
        let result = smp(&doc, &patch, "Service");
        assert_eq!(
            result["spec"]["ports"],
            json!([
                {"name": "http", "port": 80, "targetPort": 9090, "protocol": "TCP"},
                {"port": 9100, "name": "metrics"}
            ])
        );
        assert_eq!(result["spec"]["clusterIP"], "10.96.0.20");
    }

    #[test]
    fn smp_unknown_kind_replaces_lists_and_merges_maps() {
        let doc = json!({
            "kind": "Widget",
            "metadata": {"labels": {"a": "1"}},
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], "size": 1}
        });
        let patch = json!({
            "metadata": {"labels": {"b": "2"}},
            "spec": {"containers": [{"name": "a", "image": "x"}]}
        });
        assert!(!BuiltinSchema::knows("Widget"));
        let result = smp(&doc, &patch, "Widget");
        assert_eq!(
            result,
            json!({
                "kind": "Widget",
                "metadata": {"labels": {"a": "1", "b": "2"}},
                "spec": {"containers": [{"name": "a", "image": "x"}], "size": 1}
            })
        );
    }

    #[test]
    fn smp_stateful_set_claim_templates_are_replaced() {
        let doc = json!({"spec": {
            "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}},
                {"metadata": {"name": "logs"}, "spec": {"accessModes": ["ReadWriteOnce"]}}
            ],
            "template": {"spec": {"containers": [{"name": "db", "image": "pg:15"}]}}
        }});
        let patch = json!({"spec": {
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
            "template": {"spec": {"containers": [{"name": "db", "image": "pg:16"}]}}
        }});
        let result = smp(&doc, &patch, "StatefulSet");
        assert_eq!(
            result["spec"]["volumeClaimTemplates"],
            json!([{"metadata": {"name": "data"}}])
        );
        assert_eq!(
            result["spec"]["template"]["spec"]["containers"],
            json!([{"name": "db", "image": "pg:16"}])
        );
    }

    #[test]
    fn smp_cron_job_reaches_the_pod_template_through_the_job_template() {
        let doc = json!({"spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {
            "spec": {"containers": [
                {"name": "backup", "image": "tool:1", "env": [{"name": "TARGET", "value": "s3"}]},
                {"name": "notify", "image": "bell:1"}
            ]}
        }}}}});
        let patch = json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "backup", "env": [{"name": "VERBOSE", "value": "1"}]}]
        }}}}}});
        let result = smp(&doc, &patch, "CronJob");
        let list = &result["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            list,
            &json!([
                {"name": "backup", "image": "tool:1", "env": [
                    {"name": "TARGET", "value": "s3"},
                    {"name": "VERBOSE", "value": "1"}
                ]},
                {"name": "notify", "image": "bell:1"}
            ])
        );
    }

    #[test]
    fn smp_pod_status_conditions_merge_by_type() {
        let doc = json!({"status": {
            "phase": "Pending",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Ready", "status": "False"}
            ],
            "podIPs": [{"ip": "10.0.0.5"}]
        }});
        let patch = json!({"status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "podIPs": [{"ip": "fd00::5"}]
        }});
        let result = smp(&doc, &patch, "Pod");
        assert_eq!(
            result["status"],
            json!({
                "phase": "Running",
                "conditions": [
                    {"type": "PodScheduled", "status": "True"},
                    {"type": "Ready", "status": "True"}
                ],
                "podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]
            })
        );
    }

    #[test]
    fn smp_node_addresses_conditions_and_pod_cidrs() {
        let doc = json!({
            "spec": {"podCIDRs": ["10.244.1.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": "192.0.2.10"},
                    {"type": "Hostname", "address": "node-1"}
                ],
                "conditions": [{"type": "Ready", "status": "False", "reason": "Starting"}]
            }
        });
        let patch = json!({
            "spec": {"podCIDRs": ["fd00:10:244:1::/64"], "taints": []},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "192.0.2.11"}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]
            }
        });
        let result = smp(&doc, &patch, "Node");
        assert_eq!(
            result,
            json!({
                "spec": {"podCIDRs": ["10.244.1.0/24", "fd00:10:244:1::/64"], "taints": []},
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": "192.0.2.11"},
                        {"type": "Hostname", "address": "node-1"}
                    ],
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]
                }
            })
        );
    }

    #[test]
    fn smp_owner_references_merge_by_uid() {
        let doc = json!({"metadata": {"ownerReferences": [
            {"uid": "u-1", "kind": "ReplicaSet", "name": "web-1", "controller": true}
        ]}});
        let patch = json!({"metadata": {"ownerReferences": [
            {"uid": "u-1", "controller": false},
            {"uid": "u-2", "kind": "Foo", "name": "bar"}
        ]}});
        let result = smp(&doc, &patch, "Pod");
        assert_eq!(
            result["metadata"]["ownerReferences"],
            json!([
                {"uid": "u-1", "kind": "ReplicaSet", "name": "web-1", "controller": false},
                {"uid": "u-2", "kind": "Foo", "name": "bar"}
            ])
        );
    }

    #[test]
    fn smp_image_pull_secrets_and_service_account_secrets_merge_by_name() {
        let pod = json!({"spec": {"imagePullSecrets": [{"name": "a"}]}});
        let patch = json!({"spec": {"imagePullSecrets": [{"name": "b"}]}});
        assert_eq!(
            smp(&pod, &patch, "Pod")["spec"]["imagePullSecrets"],
            json!([{"name": "a"}, {"name": "b"}])
        );
        let account =
            json!({"secrets": [{"name": "token-1"}], "imagePullSecrets": [{"name": "a"}]});
        let patch = json!({"secrets": [{"name": "token-2"}], "imagePullSecrets": [{"name": "b"}]});
        assert_eq!(
            smp(&account, &patch, "ServiceAccount"),
            json!({"secrets": [{"name": "token-1"}, {"name": "token-2"}], "imagePullSecrets": [{"name": "b"}]})
        );
    }

    #[test]
    fn smp_new_values_are_cleaned_of_nulls_and_directives() {
        let doc = json!({"metadata": {"name": "x"}});
        let patch = json!({
            "spec": {
                "containers": [{"name": "a", "env": [{"name": "A", "value": null}], "$patch": "merge"}],
                "nodeSelector": {"disk": "ssd", "zone": null}
            }
        });
        let result = smp(&doc, &patch, "Pod");
        assert_eq!(
            result,
            json!({
                "metadata": {"name": "x"},
                "spec": {
                    "containers": [{"name": "a", "env": [{"name": "A"}]}],
                    "nodeSelector": {"disk": "ssd"}
                }
            })
        );
    }

    #[test]
    fn smp_a_value_of_another_type_is_replaced() {
        let doc = json!({"data": {"a": "1"}, "spec": {"thing": [1, 2]}});
        let patch = json!({"data": "flat", "spec": {"thing": {"x": 1, "y": null}}});
        assert_eq!(
            smp(&doc, &patch, "Widget"),
            json!({"data": "flat", "spec": {"thing": {"x": 1}}})
        );
    }

    #[test]
    fn smp_unknown_directives_are_rejected() {
        for patch in [
            json!({"metadata": {"$frobnicate": true}}),
            json!({"metadata": {"$patch": "obliterate"}}),
            json!({"metadata": {"$setElementOrder/": []}}),
            json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "$patch": 1}]}}}}),
        ] {
            let err = smp_err(&deployment(), &patch, "Deployment");
            assert!(
                matches!(err, PatchError::UnknownDirective { .. }),
                "{patch}: {err}"
            );
            assert_eq!(err.http_status(), 400);
        }
    }

    #[test]
    fn smp_unknown_directive_error_names_the_location() {
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "env": [{"name": "A", "$bogus": 1}]}
        ]}}}});
        let err = smp_err(&deployment(), &patch, "Deployment");
        assert_eq!(
            err.to_string(),
            "unknown strategic merge patch directive \"$bogus\" at \
             spec.template.spec.containers[name=\"web\"].env[name=\"A\"]"
        );
    }

    #[test]
    fn smp_patch_must_be_an_object() {
        let err = smp_err(&deployment(), &json!([{"op": "add"}]), "Deployment");
        assert!(matches!(err, PatchError::InvalidPatch(_)));
    }

    #[test]
    fn smp_duplicate_keys_in_the_patch_merge_in_turn() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "1"}]}});
        let patch = json!({"spec": {"containers": [
            {"name": "b", "image": "2"},
            {"name": "b", "args": ["x"]}
        ]}});
        assert_eq!(
            smp(&doc, &patch, "Pod")["spec"]["containers"],
            json!([{"name": "a", "image": "1"}, {"name": "b", "image": "2", "args": ["x"]}])
        );
    }

    #[test]
    fn smp_kubectl_edit_removing_an_env_var() {
        // `kubectl edit` after deleting DEBUG from the web container.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "metrics"}],
            "containers": [{
                "$setElementOrder/env": [{"name": "MODE"}],
                "env": [{"$patch": "delete", "name": "DEBUG"}],
                "name": "web"
            }]
        }}}});
        let result = smp(&deployment(), &patch, "Deployment");
        assert_eq!(
            containers(&result)[0]["env"],
            json!([{"name": "MODE", "value": "prod"}])
        );
        assert_eq!(names(containers(&result)), ["web", "metrics"]);
    }

    #[test]
    fn smp_kubectl_apply_deployment_with_new_replicas_and_image() {
        // The live object, as the server stores it: defaults filled in, status and the
        // annotation holding the configuration of the previous `kubectl apply`.
        let previous_config = r#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"annotations":{},"name":"web","namespace":"default"},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"labels":{"app":"web"}},"spec":{"containers":[{"image":"nginx:1.25","name":"web","ports":[{"containerPort":80}]},{"image":"exporter:0.9","name":"metrics"}]}}}}"#;
        let mut live = deployment();
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            json!(format!("{previous_config}\n"));

        // The user changed replicas to 5 and the web image to nginx:1.27; client-side apply
        // diffs last-applied, new config and live object and sends this patch.
        let new_config = previous_config
            .replace("\"replicas\":2", "\"replicas\":5")
            .replace("nginx:1.25", "nginx:1.27");
        let patch = json!({
            "metadata": {"annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": format!("{new_config}\n")
            }},
            "spec": {
                "replicas": 5,
                "template": {"spec": {
                    "$setElementOrder/containers": [{"name": "web"}, {"name": "metrics"}],
                    "containers": [{"image": "nginx:1.27", "name": "web"}]
                }}
            }
        });

        let result = smp(&live, &patch, "Deployment");

        let mut expected = live.clone();
        expected["spec"]["replicas"] = json!(5);
        expected["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
            json!(format!("{new_config}\n"));
        assert_eq!(result, expected);

        // Spelled out: server-side defaults, the other container, annotations the server set
        // and the status all survive.
        let web = &containers(&result)[0];
        assert_eq!(web["imagePullPolicy"], "IfNotPresent");
        assert_eq!(web["env"][0]["name"], "MODE");
        assert_eq!(names(containers(&result)), ["web", "metrics"]);
        assert_eq!(
            result["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
            "3"
        );
        assert_eq!(result["status"], deployment()["status"]);
        let recorded: Value = serde_json::from_str(
            result["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(recorded["spec"]["replicas"], 5);
    }

    #[test]
    fn smp_does_not_modify_its_input() {
        let doc = deployment();
        let patch = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "changed"}
        ]}}}, "metadata": {"labels": null}});
        let _ = smp(&doc, &patch, "Deployment");
        assert_eq!(doc, deployment());
    }

    #[test]
    fn smp_with_a_custom_schema() {
        struct GadgetSchema;
        impl PatchSchema for GadgetSchema {
            fn field(&self, type_name: &str, field: &str) -> Option<FieldInfo> {
                match (type_name, field) {
                    ("Gadget", "parts") => Some(FieldInfo::merge_by_key("Part", "serial")),
                    ("Part", "tags") => Some(FieldInfo::merge_primitives()),
                    _ => None,
                }
            }
        }
        let doc = json!({"parts": [{"serial": 7, "tags": ["red"], "size": 1}]});
        let patch = json!({"parts": [{"serial": 7, "tags": ["blue"]}, {"serial": 8}]});
        let result = strategic_merge_patch(&doc, &patch, &GadgetSchema, "Gadget").unwrap();
        assert_eq!(
            result,
            json!({"parts": [{"serial": 7, "tags": ["red", "blue"], "size": 1}, {"serial": 8}]})
        );
    }

    #[test]
    fn builtin_schema_knows_the_built_in_kinds() {
        for kind in [
            "Pod",
            "Deployment",
            "CronJob",
            "ControllerRevision",
            "ClusterRoleBinding",
        ] {
            assert!(BuiltinSchema::knows(kind), "{kind}");
        }
        assert_eq!(BuiltinSchema::KINDS.len(), 35);
        assert!(!BuiltinSchema::knows("Widget"));
        assert!(!BuiltinSchema::knows("PodSpec"));
    }

    #[test]
    fn builtin_schema_encodes_kubernetes_merge_keys() {
        let schema = BuiltinSchema;
        let key = |type_name: &str, field: &str| match schema.field(type_name, field) {
            Some(FieldInfo {
                list: Some(ListStrategy::MergeByKey(key)),
                ..
            }) => Some(key),
            _ => None,
        };
        assert_eq!(key("PodSpec", "containers"), Some("name"));
        assert_eq!(key("PodSpec", "initContainers"), Some("name"));
        assert_eq!(key("PodSpec", "ephemeralContainers"), Some("name"));
        assert_eq!(key("PodSpec", "volumes"), Some("name"));
        assert_eq!(key("PodSpec", "hostAliases"), Some("ip"));
        assert_eq!(
            key("PodSpec", "topologySpreadConstraints"),
            Some("topologyKey")
        );
        assert_eq!(key("PodSpec", "resourceClaims"), Some("name"));
        assert_eq!(key("Container", "ports"), Some("containerPort"));
        assert_eq!(key("Container", "volumeMounts"), Some("mountPath"));
        assert_eq!(
            key("EphemeralContainer", "volumeDevices"),
            Some("devicePath")
        );
        assert_eq!(key("ServiceSpec", "ports"), Some("port"));
        assert_eq!(key("NodeStatus", "addresses"), Some("type"));
        assert_eq!(key("JobStatus", "conditions"), Some("type"));
        assert_eq!(key("ObjectMeta", "ownerReferences"), Some("uid"));
        assert_eq!(
            schema.field("ObjectMeta", "finalizers"),
            Some(FieldInfo::merge_primitives())
        );
        assert_eq!(
            schema.field("NodeSpec", "podCIDRs"),
            Some(FieldInfo::merge_primitives())
        );
        assert_eq!(
            schema.field("Ingress", "metadata"),
            Some(FieldInfo::object("ObjectMeta"))
        );
        assert_eq!(key("EndpointsSubset", "addresses"), None);
        assert_eq!(schema.field("Role", "rules"), None);
    }

    #[test]
    fn error_messages_are_readable() {
        let err = PatchError::PathNotFound {
            path: "/spec/x".into(),
            reason: "member \"x\" does not exist".into(),
        };
        assert_eq!(
            err.to_string(),
            "path \"/spec/x\" not found: member \"x\" does not exist"
        );
        let patch = json!({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}});
        let err = smp_err(&deployment(), &patch, "Deployment");
        assert_eq!(
            err.to_string(),
            "list item at spec.template.spec.containers[0] lacks the merge key \"name\""
        );
    }

    // ------------------------------------------------------------------ limits on hostile patches

    /// `n` JSON patch operations that change nothing.
    fn harmless_operations(n: usize) -> Value {
        Value::Array(vec![json!({"op": "test", "path": "/a", "value": 1}); n])
    }

    /// A value nested `depth` levels deep (`{"k": {"k": ... 0}}`), built without recursion.
    fn nested(depth: usize) -> Value {
        let mut value = json!(0);
        for _ in 0..depth {
            value = json!({ "k": value });
        }
        value
    }

    /// A patch whose every operation moves the value at the end of the list `/l` into the
    /// empty object before it: one level deeper per operation, with short pointers and no array
    /// shifting. It ends `levels` deep.
    fn deepening_moves(levels: usize) -> (Value, Value) {
        let mut list = vec![json!({}); levels];
        list.push(json!("x"));
        let doc = json!({ "a": 1, "l": list });
        let operations = (1..=levels)
            .rev()
            .map(|i| json!({"op": "move", "from": format!("/l/{i}"), "path": format!("/l/{}/k", i - 1)}))
            .collect();
        (doc, Value::Array(operations))
    }

    #[test]
    fn json_patch_takes_10000_operations_and_refuses_more() {
        let doc = json!({"a": 1});
        assert_eq!(jp(&doc, &harmless_operations(10_000)), doc);
        let err = json_patch(&doc, &harmless_operations(10_001)).unwrap_err();
        assert_eq!(err.http_status(), 413);
        assert_eq!(
            err.to_string(),
            "The allowed maximum operations in a JSON patch is 10000, got 10001"
        );
    }

    #[test]
    fn json_patch_doubling_copies_stop_at_the_copy_limit() {
        // Each copy doubles `/data`: 40 of them would need a terabyte.
        let doc = json!({"data": {"a": "x".repeat(1024)}});
        let operations: Vec<Value> = (0..40)
            .map(|i| json!({"op": "copy", "from": "/data", "path": format!("/data/x{i}")}))
            .collect();
        let started = std::time::Instant::now();
        let err = json_patch(&doc, &Value::Array(operations)).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(err.http_status(), 422);
        assert!(
            err.to_string()
                .contains("accumulated size increase of copy"),
            "{err}"
        );
    }

    #[test]
    fn json_patch_copies_may_add_exactly_the_copy_limit() {
        // The limit counts the copied value's JSON encoding: a string of n bytes is n + 2.
        let limit = 3 * 1024 * 1024;
        let copy = json!([{"op": "copy", "from": "/big", "path": "/copy"}]);
        let fits = json!({"big": "x".repeat(limit - 2)});
        assert_eq!(jp(&fits, &copy)["copy"], fits["big"]);
        let too_big = json!({"big": "x".repeat(limit - 1)});
        let err = json_patch(&too_big, &copy).unwrap_err();
        assert_eq!(err.http_status(), 422);
        assert!(
            err.to_string().contains("would exceed the limit 3145728"),
            "{err}"
        );
        // The limit is for the whole patch, not for each copy.
        let half = json!({"big": "x".repeat(limit / 2)});
        let twice = json!([
            {"op": "copy", "from": "/big", "path": "/one"},
            {"op": "copy", "from": "/big", "path": "/two"},
        ]);
        assert_eq!(json_patch(&half, &twice).unwrap_err().http_status(), 422);
    }

    #[test]
    fn json_patch_result_nests_no_deeper_than_a_json_body() {
        // serde_json reads at most 127 nested containers; the document itself is one.
        let add = |value: Value| {
            json_patch(
                &json!({}),
                &json!([{"op": "add", "path": "/a", "value": value}]),
            )
        };
        assert!(add(nested(126)).is_ok());
        let err = add(nested(127)).unwrap_err();
        assert_eq!(err.http_status(), 422);
        assert!(err.to_string().contains("127"), "{err}");
        // A copy of a deep value to a deeper place is refused too.
        let doc = json!({"a": nested(120), "b": {}});
        let copy = json!([{"op": "copy", "from": "/a", "path": "/b/c"}]);
        assert!(json_patch(&doc, &copy).is_ok());
        let deeper = json!({"a": nested(126), "b": {}});
        assert_eq!(json_patch(&deeper, &copy).unwrap_err().http_status(), 422);
    }

    #[test]
    fn json_patch_moves_building_a_very_deep_document_are_refused_without_overflowing() {
        // 100 levels are fine: the string ends up inside 100 objects in `/l/0`.
        let (doc, patch) = deepening_moves(100);
        let deep = jp(&doc, &patch);
        assert_eq!(deep["l"].as_array().unwrap().len(), 1);
        let measured = json::measure(&deep, usize::MAX, usize::MAX).unwrap();
        assert_eq!(measured.depth, 102);
        // 9,999 levels: dropping or printing that recursively would overflow the stack.
        let (doc, patch) = deepening_moves(9_999);
        let err = json_patch(&doc, &patch).unwrap_err();
        assert_eq!(err.http_status(), 422);
    }

    #[test]
    fn json_patch_array_shifting_is_bounded() {
        // Inserting at the front of a long array moves every element: 10,000 such inserts into
        // a million elements would be ten billion moves.
        let mut operations = vec![json!({"op": "add", "path": "/a", "value": vec![0; 1_000_000]})];
        operations.extend((1..10_000).map(|_| json!({"op": "add", "path": "/a/0", "value": 1})));
        let started = std::time::Instant::now();
        let err = json_patch(&json!({}), &Value::Array(operations)).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(err.http_status(), 413);
        // A few inserts into a long array are fine.
        let mut operations = vec![json!({"op": "add", "path": "/a", "value": vec![0; 100_000]})];
        operations.extend((0..10).map(|_| json!({"op": "add", "path": "/a/0", "value": 1})));
        assert_eq!(
            jp(&json!({}), &Value::Array(operations))["a"]
                .as_array()
                .unwrap()
                .len(),
            100_010
        );
    }

    #[test]
    fn smp_long_lists_merge_in_linear_time() {
        // Looking every patch item up by scanning the list would make these quadratic.
        let n = 60_000;
        let existing: Vec<Value> = (0..n).map(|i| json!(format!("e{i}"))).collect();
        let added: Vec<Value> = (0..n).map(|i| json!(format!("p{i}"))).collect();
        let doc = json!({"metadata": {"name": "x", "finalizers": existing}});
        let started = std::time::Instant::now();
        let merged = smp(
            &doc,
            &json!({"metadata": {"finalizers": added}}),
            "ConfigMap",
        );
        assert_eq!(
            merged["metadata"]["finalizers"].as_array().unwrap().len(),
            2 * n
        );
        let containers: Vec<Value> = (0..n)
            .map(|i| json!({"name": format!("c{i}"), "image": "a"}))
            .collect();
        let pod = json!({"spec": {"containers": containers}});
        let renamed: Vec<Value> = (0..n)
            .rev()
            .map(|i| json!({"name": format!("c{i}"), "image": "b"}))
            .collect();
        let order: Vec<Value> = (0..n)
            .rev()
            .map(|i| json!({"name": format!("c{i}")}))
            .collect();
        let gone: Vec<Value> = (0..n).map(|i| json!(format!("e{i}"))).collect();
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": gone},
            "spec": {"containers": renamed, "$setElementOrder/containers": order},
        });
        let pod = json!({"metadata": {"finalizers": merged["metadata"]["finalizers"]}, "spec": pod["spec"]});
        let merged = smp(&pod, &patch, "Pod");
        assert!(started.elapsed() < std::time::Duration::from_secs(10));
        let containers = merged["spec"]["containers"].as_array().unwrap();
        assert_eq!(containers.len(), n);
        assert_eq!(
            containers[0],
            json!({"name": format!("c{}", n - 1), "image": "b"})
        );
        assert_eq!(
            merged["metadata"]["finalizers"].as_array().unwrap().len(),
            n
        );
    }

    #[test]
    fn smp_merges_primitives_and_keys_by_json_equality() {
        // 1 and 1.0 are the same JSON number, so neither is added twice.
        let doc = json!({"spec": {"podCIDRs": [1, "a"]}});
        let merged = smp(
            &doc,
            &json!({"spec": {"podCIDRs": [1.0, "a", "b", "b"]}}),
            "Node",
        );
        assert_eq!(merged["spec"]["podCIDRs"], json!([1, "a", "b"]));
        let doc = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "x"}]}]}});
        let patch = json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80.0, "name": "y"}]}]}});
        // The port item merges into the existing one instead of being appended.
        assert_eq!(
            smp(&doc, &patch, "Pod")["spec"]["containers"][0]["ports"],
            json!([{"containerPort": 80.0, "name": "y"}])
        );
    }
}
