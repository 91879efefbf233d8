//! Values read through a [`Schema`], after structured-merge-diff's `typed` package: the set of
//! fields a value sets (with the validation that comes with it: type mismatches, associative
//! list items without their keys, duplicate keys), the merge of an applied configuration into
//! a live object, the removal of a set of fields, and the comparison of two values.
//!
//! Every walk is bounded by [`MAX_NESTING_DEPTH`]: values deeper than any request body can be
//! are reported by [`Typed::validate`] and never recursed into further.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use super::fieldpath::{Path, PathElement, Set};
use super::schema::{Atom, ListKind, Schema};
use super::value::{self, go_debug, go_quote};
use crate::json::MAX_NESTING_DEPTH;

/// A value that does not fit its type, at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationError {
    /// Where (the empty path for the object itself).
    pub path: Path,
    /// What is wrong, in smd's words (`field not declared in schema`).
    pub message: String,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.0.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every way a value does not fit its type, printed as smd prints `ValidationErrors`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationErrors(pub Vec<ValidationError>);

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                f.write_str("errors:")?;
                all.iter().try_for_each(|e| write!(f, "\n  {e}"))
            }
        }
    }
}

/// Whether an associative list may hold two items with the same key. Kubernetes allows it in
/// objects already stored (and in the results of non-apply writes, which validation does not
/// always stop) and rejects it in applied configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// Two items with one key are an error.
    Reject,
    /// Duplicated items are owned as a whole: the item, not its fields.
    Allow,
}

/// What changed from one value to another: fields only the new one has, fields both have
/// with different values, fields only the old one has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// In the new value only.
    pub added: Set,
    /// In both, with different values.
    pub modified: Set,
    /// In the old value only.
    pub removed: Set,
}

static UNTYPED: Atom = Atom::Untyped;

/// An atom resolved against the value at hand (an untyped value takes the shape of its JSON:
/// objects field by field, lists atomic, the rest scalars).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Scalar,
    Struct {
        name: &'static str,
        atomic: bool,
    },
    Map {
        values: &'static Atom,
        atomic: bool,
    },
    List {
        items: &'static Atom,
        kind: ListKind,
    },
}

fn shape(atom: Atom, v: Option<&Value>) -> Shape {
    match atom {
        Atom::Scalar => Shape::Scalar,
        Atom::Struct { name, atomic } => Shape::Struct { name, atomic },
        Atom::Map { values, atomic } => Shape::Map { values, atomic },
        Atom::List { items, kind } => Shape::List { items, kind },
        Atom::Untyped => match v {
            Some(Value::Object(_)) => Shape::Map {
                values: &UNTYPED,
                atomic: false,
            },
            Some(Value::Array(_)) => Shape::List {
                items: &UNTYPED,
                kind: ListKind::Atomic,
            },
            _ => Shape::Scalar,
        },
    }
}

fn non_empty_object(v: Option<&Value>) -> Option<&Map<String, Value>> {
    v.and_then(Value::as_object).filter(|m| !m.is_empty())
}

fn non_empty_array(v: Option<&Value>) -> Option<&Vec<Value>> {
    v.and_then(Value::as_array).filter(|a| !a.is_empty())
}

/// The path element of a list item (`element` errors as smd words them). A key field the
/// item omits is taken from the schema's default for it, as smd does (`protocol: TCP`).
fn item_element(
    schema: &dyn Schema,
    items: Atom,
    kind: ListKind,
    index: usize,
    item: &Value,
) -> Result<PathElement, String> {
    match kind {
        ListKind::Atomic => Ok(PathElement::Index(index as i64)),
        ListKind::Set => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            scalar => Ok(PathElement::Value(scalar.clone())),
        },
        ListKind::Map(keys) => match item {
            Value::Null => Err("associative list with keys may not have a null element".into()),
            Value::Object(fields) => {
                let mut key = Vec::with_capacity(keys.len());
                for name in keys {
                    let default = || match items {
                        Atom::Struct {
                            name: item_type, ..
                        } => schema
                            .key_default(item_type, name)
                            .map(|d| Value::String(d.into())),
                        _ => None,
                    };
                    match fields.get(*name).cloned().or_else(default) {
                        Some(v) => key.push((name.to_string(), v)),
                        None => {
                            let mut msg = String::from(
                                "associative list with keys has an element that omits key field ",
                            );
                            go_quote(&mut msg, name);
                            msg.push_str(" (and doesn't have default value)");
                            return Err(msg);
                        }
                    }
                }
                Ok(PathElement::key(key))
            }
            _ => Err("associative list with keys may not have non-map elements".into()),
        },
    }
}

/// A list's items by path element, in order, with the elements that occur more than once.
struct Indexed<'v> {
    order: Vec<(PathElement, &'v Value)>,
    /// Where each element first occurs in `order`: lookups stay logarithmic in long lists.
    first: BTreeMap<PathElement, usize>,
    duplicated: BTreeSet<PathElement>,
}

impl<'v> Indexed<'v> {
    fn new(schema: &dyn Schema, atom: Atom, kind: ListKind, items: Option<&'v Vec<Value>>) -> Self {
        let mut order = Vec::new();
        let mut first = BTreeMap::new();
        let mut duplicated = BTreeSet::new();
        for (i, item) in items.into_iter().flatten().enumerate() {
            let Ok(pe) = item_element(schema, atom, kind, i, item) else {
                continue;
            };
            if first.contains_key(&pe) {
                duplicated.insert(pe.clone());
            } else {
                first.insert(pe.clone(), order.len());
            }
            order.push((pe, item));
        }
        Indexed {
            order,
            first,
            duplicated,
        }
    }

    /// The first item with `pe`.
    fn get(&self, pe: &PathElement) -> Option<&'v Value> {
        self.first.get(pe).map(|&i| self.order[i].1)
    }

    fn all(&self, pe: &PathElement) -> Vec<&'v Value> {
        if !self.duplicated.contains(pe) {
            return self.get(pe).into_iter().collect();
        }
        self.order
            .iter()
            .filter(|(p, _)| p == pe)
            .map(|(_, v)| *v)
            .collect()
    }

    fn has(&self, pe: &PathElement) -> bool {
        self.first.contains_key(pe)
    }
}

/// A type in a schema: the entry point of every operation on values of that type.
#[derive(Clone, Copy)]
pub struct Typed<'s> {
    schema: &'s dyn Schema,
    atom: Atom,
}

impl<'s> Typed<'s> {
    /// Values of type `atom` in `schema`.
    pub fn new(schema: &'s dyn Schema, atom: Atom) -> Self {
        Typed { schema, atom }
    }

    /// Objects of `kind` in `api_version`, deduced from the value itself when the schema does
    /// not know the kind (as Kubernetes types custom resources without a schema).
    pub fn root(schema: &'s dyn Schema, api_version: &str, kind: &str) -> Self {
        let atom = schema.root(api_version, kind).unwrap_or(Atom::Untyped);
        Typed { schema, atom }
    }

    /// The atom of field `key` of a struct or map (`None`: a struct without that field).
    fn field_atom(&self, shape: Shape, key: &str) -> Option<Atom> {
        match shape {
            Shape::Struct { name, .. } => self.schema.field(name, key),
            Shape::Map { values, .. } => Some(*values),
            _ => None,
        }
    }

    /// Checks `v` against the type: every error smd's validation reports.
    pub fn validate(&self, v: &Value, duplicates: Duplicates) -> Result<(), ValidationErrors> {
        self.to_field_set(v, duplicates).map(|_| ())
    }

    /// The fields `v` sets: every scalar, atomic list, map or struct as a leaf; every
    /// associative list item and map entry as a member too; struct fields only through what
    /// they contain (so `spec: {}` sets nothing). Fails with every validation error.
    pub fn to_field_set(&self, v: &Value, duplicates: Duplicates) -> Result<Set, ValidationErrors> {
        let mut walker = FieldSetWalker {
            typed: *self,
            duplicates,
            errors: Vec::new(),
            set: Set::new(),
        };
        walker.walk(self.atom, v, &mut Vec::new(), true, 0);
        if walker.errors.is_empty() {
            Ok(walker.set)
        } else {
            Err(ValidationErrors(walker.errors))
        }
    }

    /// Merges an applied configuration into a live object, as smd's `Merge`: the
    /// configuration's values win, objects merge field by field, associative lists and sets
    /// item by item (ordered as smd orders them, see [`Typed::merge`]'s list rule), atomic
    /// lists, maps and structs are replaced. Both values should have been validated; where
    /// they still disagree on a shape, the configuration replaces the live value.
    pub fn merge(&self, live: &Value, config: &Value) -> Value {
        self.merge_at(self.atom, Some(live), Some(config), 0)
            .unwrap_or(Value::Null)
    }

    fn merge_at(
        &self,
        atom: Atom,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        depth: usize,
    ) -> Option<Value> {
        let leaf = || rhs.or(lhs).cloned();
        if depth > MAX_NESTING_DEPTH {
            return leaf();
        }
        let lshape = shape(atom, lhs);
        let rshape = shape(atom, rhs);
        let which = match (lhs, rhs) {
            (Some(_), Some(_)) if lshape != rshape && atom == Atom::Untyped => return leaf(),
            (_, Some(_)) => rshape,
            _ => lshape,
        };
        match which {
            Shape::Scalar => leaf(),
            Shape::Struct { atomic, .. } | Shape::Map { atomic, .. } => {
                let (lm, rm) = (non_empty_object(lhs), non_empty_object(rhs));
                if atomic || (lm.is_none() && rm.is_none()) {
                    return leaf();
                }
                let keys: BTreeSet<&String> =
                    lm.into_iter().chain(rm).flat_map(Map::keys).collect();
                let mut out = Map::new();
                for key in keys {
                    let child = self.field_atom(which, key).unwrap_or(Atom::Untyped);
                    let l = lm.and_then(|m| m.get(key));
                    let r = rm.and_then(|m| m.get(key));
                    if let Some(v) = self.merge_at(child, l, r, depth + 1) {
                        out.insert(key.clone(), v);
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Shape::List { items, kind } => {
                let (la, ra) = (non_empty_array(lhs), non_empty_array(rhs));
                if kind == ListKind::Atomic || (la.is_none() && ra.is_none()) {
                    return leaf();
                }
                let out = self.merge_items(*items, kind, la, ra, depth);
                (!out.is_empty()).then_some(Value::Array(out))
            }
        }
    }

    /// smd's list merge: walks both lists together, keeping the live order for items the
    /// configuration does not mention and the configuration's order for the items both have,
    /// with new items placed after the configured item they follow.
    fn merge_items(
        &self,
        items: Atom,
        kind: ListKind,
        lhs: Option<&Vec<Value>>,
        rhs: Option<&Vec<Value>>,
        depth: usize,
    ) -> Vec<Value> {
        let left = Indexed::new(self.schema, items, kind, lhs);
        let right = Indexed::new(self.schema, items, kind, rhs);
        // The live value of a shared item; none when the live list repeats it, so that the
        // configured item replaces every copy.
        let live_of = |pe: &PathElement| {
            if left.duplicated.contains(pe) {
                None
            } else {
                left.get(pe)
            }
        };
        let mut shared = right
            .order
            .iter()
            .filter(|(pe, _)| left.has(pe))
            .map(|(pe, _)| pe.clone())
            .collect::<Vec<_>>()
            .into_iter();
        let mut next_shared = shared.next();
        let mut merged = BTreeSet::new();
        let mut out = Vec::new();
        let push = |out: &mut Vec<Value>, l: Option<&Value>, r: Option<&Value>| {
            if let Some(v) = self.merge_at(items, l, r, depth + 1) {
                out.push(v);
            }
        };
        let (mut li, mut ri) = (0, 0);
        while li < left.order.len() || ri < right.order.len() {
            if li < left.order.len() && ri < right.order.len() {
                let pe = &left.order[li].0;
                if *pe == right.order[ri].0 {
                    merged.insert(pe.clone());
                    push(&mut out, live_of(pe), right.get(pe));
                    li += 1;
                    ri += 1;
                    next_shared = shared.next();
                    continue;
                }
                if right.has(pe) && next_shared.as_ref().is_some_and(|next| next != pe) {
                    // A shared item, but not the one due in this round.
                    li += 1;
                    continue;
                }
            }
            if li < left.order.len() {
                let (pe, item) = &left.order[li];
                if !right.has(pe) {
                    push(&mut out, Some(*item), None);
                    li += 1;
                    continue;
                }
                if merged.contains(pe) {
                    li += 1;
                    continue;
                }
            }
            if ri < right.order.len() {
                let pe = right.order[ri].0.clone();
                merged.insert(pe.clone());
                push(&mut out, live_of(&pe), right.get(&pe));
                ri += 1;
                if next_shared.as_ref() == Some(&pe) {
                    next_shared = shared.next();
                }
            }
        }
        out
    }

    /// What changed from `old` to `new`: leaves that appear, change or disappear, and the
    /// non-leaf fields (objects, lists) that appear or disappear as a whole.
    pub fn compare(&self, old: &Value, new: &Value) -> Comparison {
        let mut out = Comparison::default();
        self.compare_at(
            self.atom,
            Some(old),
            Some(new),
            &mut Vec::new(),
            &mut out,
            0,
        );
        out
    }

    fn compare_at(
        &self,
        atom: Atom,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        path: &mut Vec<PathElement>,
        out: &mut Comparison,
        depth: usize,
    ) {
        let leaf = |out: &mut Comparison, path: &[PathElement]| match (lhs, rhs) {
            (None, _) => out.added.insert(path),
            (_, None) => out.removed.insert(path),
            (Some(l), Some(r)) if !value::equals(l, r) => out.modified.insert(path),
            _ => {}
        };
        if depth > MAX_NESTING_DEPTH {
            return leaf(out, path);
        }
        let lshape = shape(atom, lhs);
        let rshape = shape(atom, rhs);
        let which = match (lhs, rhs) {
            (Some(_), Some(_)) if lshape != rshape && atom == Atom::Untyped => {
                return leaf(out, path);
            }
            (_, Some(_)) => rshape,
            _ => lshape,
        };
        match which {
            Shape::Scalar => return leaf(out, path),
            Shape::Struct { atomic, .. } | Shape::Map { atomic, .. } => {
                let (lm, rm) = (non_empty_object(lhs), non_empty_object(rhs));
                if atomic || (lm.is_none() && rm.is_none()) {
                    return leaf(out, path);
                }
                let keys: BTreeSet<&String> =
                    lm.into_iter().chain(rm).flat_map(Map::keys).collect();
                for key in keys {
                    let child = self.field_atom(which, key).unwrap_or(Atom::Untyped);
                    path.push(PathElement::Field(key.clone()));
                    let l = lm.and_then(|m| m.get(key));
                    let r = rm.and_then(|m| m.get(key));
                    self.compare_at(child, l, r, path, out, depth + 1);
                    path.pop();
                }
            }
            Shape::List { items, kind } => {
                let (la, ra) = (non_empty_array(lhs), non_empty_array(rhs));
                if kind == ListKind::Atomic || (la.is_none() && ra.is_none()) {
                    return leaf(out, path);
                }
                let left = Indexed::new(self.schema, *items, kind, la);
                let right = Indexed::new(self.schema, *items, kind, ra);
                let mut elements: Vec<&PathElement> = Vec::new();
                let mut seen = BTreeSet::new();
                for (pe, _) in left.order.iter().chain(&right.order) {
                    if seen.insert(pe) {
                        elements.push(pe);
                    }
                }
                for pe in elements {
                    path.push(pe.clone());
                    if left.duplicated.contains(pe) || right.duplicated.contains(pe) {
                        // A repeated item is compared as a whole.
                        let (l, r) = (left.all(pe), right.all(pe));
                        if l.is_empty() {
                            out.added.insert(path);
                        } else if r.is_empty() {
                            out.removed.insert(path);
                        } else if l.len() != r.len()
                            || l.iter().zip(&r).any(|(a, b)| !value::equals(a, b))
                        {
                            out.modified.insert(path);
                        }
                    } else {
                        self.compare_at(*items, left.get(pe), right.get(pe), path, out, depth + 1);
                    }
                    path.pop();
                }
            }
        }
        match (lhs, rhs) {
            (None, _) => out.added.insert(path),
            (_, None) => out.removed.insert(path),
            _ => {}
        }
    }

    /// `v` without the members of `set` (each removed with everything below it). As smd's
    /// `RemoveItems`, a list or object emptied by the removal becomes `null` rather than
    /// disappearing (Kubernetes' typed conversion then drops it; see
    /// [`Typed::drop_null_fields`]).
    pub fn remove_items(&self, v: &Value, set: &Set) -> Value {
        if set.is_empty() {
            return v.clone();
        }
        self.remove_at(self.atom, v, set, 0)
    }

    fn remove_at(&self, atom: Atom, v: &Value, set: &Set, depth: usize) -> Value {
        if depth > MAX_NESTING_DEPTH {
            return v.clone();
        }
        match shape(atom, Some(v)) {
            Shape::Scalar => v.clone(),
            which @ (Shape::Struct { atomic, .. } | Shape::Map { atomic, .. }) => {
                let Some(members) = v.as_object().filter(|m| !m.is_empty() && !atomic) else {
                    return Value::Null;
                };
                let mut out = Map::new();
                for (key, child) in members {
                    let pe = PathElement::Field(key.clone());
                    if set.has_member(&pe) {
                        continue;
                    }
                    let kept = match set.child(&pe).filter(|s| !s.is_empty()) {
                        Some(below) => {
                            let child_atom = self.field_atom(which, key).unwrap_or(Atom::Untyped);
                            self.remove_at(child_atom, child, below, depth + 1)
                        }
                        None => child.clone(),
                    };
                    out.insert(key.clone(), kept);
                }
                if out.is_empty() {
                    Value::Null
                } else {
                    Value::Object(out)
                }
            }
            Shape::List { items, kind } => {
                let Some(list) = v
                    .as_array()
                    .filter(|a| !a.is_empty() && kind != ListKind::Atomic)
                else {
                    return Value::Null;
                };
                let mut out = Vec::new();
                for (i, item) in list.iter().enumerate() {
                    let Ok(pe) = item_element(self.schema, *items, kind, i, item) else {
                        out.push(item.clone());
                        continue;
                    };
                    if set.has_member(&pe) {
                        continue;
                    }
                    out.push(match set.child(&pe).filter(|s| !s.is_empty()) {
                        Some(below) => self.remove_at(*items, item, below, depth + 1),
                        None => item.clone(),
                    });
                }
                if out.is_empty() {
                    Value::Null
                } else {
                    Value::Array(out)
                }
            }
        }
    }

    /// `set` with the struct fields it reaches into added as members (smd's
    /// `EnsureNamedFieldsAreMembers`): `.spec.replicas` also owns `.spec`, but
    /// `.metadata.labels.app` does not own the map entry's parent beyond `labels`.
    pub fn ensure_named_fields_are_members(&self, set: &Set) -> Set {
        self.named_at(Some(self.atom), set, 0)
    }

    fn named_at(&self, atom: Option<Atom>, set: &Set, depth: usize) -> Set {
        let which = atom.map(|a| shape(a, None));
        let mut out = set.clone();
        if depth > MAX_NESTING_DEPTH {
            return out;
        }
        let mut children = Vec::new();
        for (pe, below) in set.children() {
            let child_atom = match (pe, which) {
                (PathElement::Field(name), Some(s @ Shape::Struct { .. })) => {
                    let found = self.field_atom(s, name);
                    if found.is_some() {
                        out.insert(std::slice::from_ref(pe));
                    }
                    found
                }
                (PathElement::Field(name), Some(s @ Shape::Map { .. })) => self.field_atom(s, name),
                (PathElement::Key(_), Some(Shape::List { items, .. })) => Some(*items),
                _ => None,
            };
            children.push((pe.clone(), self.named_at(child_atom, below, depth + 1)));
        }
        out.replace_children(children);
        out
    }

    /// `v` without the `null` fields of its structs, as decoding into Kubernetes' Go types
    /// drops them (a nil pointer, slice or map is omitted when encoded again).
    pub fn drop_null_fields(&self, v: &Value) -> Value {
        self.drop_nulls_at(self.atom, v, 0)
    }

    fn drop_nulls_at(&self, atom: Atom, v: &Value, depth: usize) -> Value {
        if depth > MAX_NESTING_DEPTH {
            return v.clone();
        }
        match (shape(atom, Some(v)), v) {
            (which @ (Shape::Struct { .. } | Shape::Map { .. }), Value::Object(members)) => {
                let is_struct = matches!(which, Shape::Struct { .. });
                let mut out = Map::new();
                for (key, child) in members {
                    if is_struct && child.is_null() {
                        continue;
                    }
                    let child_atom = self.field_atom(which, key).unwrap_or(Atom::Untyped);
                    out.insert(
                        key.clone(),
                        self.drop_nulls_at(child_atom, child, depth + 1),
                    );
                }
                Value::Object(out)
            }
            (Shape::List { items, .. }, Value::Array(list)) => Value::Array(
                list.iter()
                    .map(|item| self.drop_nulls_at(*items, item, depth + 1))
                    .collect(),
            ),
            _ => v.clone(),
        }
    }
}

/// Validation and the field set in one walk, as smd's validating and field-set walkers see
/// the same value.
struct FieldSetWalker<'s> {
    typed: Typed<'s>,
    duplicates: Duplicates,
    errors: Vec<ValidationError>,
    set: Set,
}

impl FieldSetWalker<'_> {
    fn error(&mut self, path: &[PathElement], message: String) {
        self.errors.push(ValidationError {
            path: Path(path.to_vec()),
            message,
        });
    }

    /// `collect`: whether the fields seen here are added to the set (not inside an atomic
    /// value or a repeated list item, which are owned as a whole).
    fn walk(
        &mut self,
        atom: Atom,
        v: &Value,
        path: &mut Vec<PathElement>,
        collect: bool,
        depth: usize,
    ) {
        if depth > MAX_NESTING_DEPTH {
            self.error(
                path,
                format!("nests deeper than {MAX_NESTING_DEPTH} levels"),
            );
            return;
        }
        match shape(atom, Some(v)) {
            Shape::Scalar => {
                if matches!(v, Value::Array(_) | Value::Object(_)) {
                    self.error(path, format!("expected any scalar, got {}", go_debug(v)));
                } else if collect {
                    self.set.insert(path);
                }
            }
            which @ (Shape::Struct { atomic, .. } | Shape::Map { atomic, .. }) => {
                let members = match v {
                    Value::Object(members) => members,
                    Value::Null => {
                        if atomic && collect {
                            self.set.insert(path);
                        }
                        return;
                    }
                    other => {
                        self.error(path, format!("expected map, got {}", go_debug(other)));
                        return;
                    }
                };
                if atomic && collect {
                    self.set.insert(path);
                }
                let collect = collect && !atomic;
                for (key, child) in members {
                    path.push(PathElement::Field(key.clone()));
                    match self.typed.field_atom(which, key) {
                        None => self.error(path, "field not declared in schema".into()),
                        Some(child_atom) => {
                            self.walk(child_atom, child, path, collect, depth + 1);
                            if collect && !matches!(which, Shape::Struct { .. }) {
                                self.set.insert(path);
                            }
                        }
                    }
                    path.pop();
                }
            }
            Shape::List { items, kind } => {
                let list = match v {
                    Value::Array(list) => list,
                    Value::Null => {
                        if kind == ListKind::Atomic && collect {
                            self.set.insert(path);
                        }
                        return;
                    }
                    other => {
                        self.error(path, format!("expected list, got {}", go_debug(other)));
                        return;
                    }
                };
                let atomic = kind == ListKind::Atomic;
                if atomic && collect {
                    self.set.insert(path);
                }
                let mut elements = Vec::with_capacity(list.len());
                let mut seen = BTreeSet::new();
                let mut duplicated = BTreeSet::new();
                for (i, item) in list.iter().enumerate() {
                    match item_element(self.typed.schema, *items, kind, i, item) {
                        Err(msg) => {
                            self.error(path, format!("element {i}: {msg}"));
                            elements.push(None);
                        }
                        Ok(pe) => {
                            if !seen.insert(pe.clone()) {
                                let first_repeat = duplicated.insert(pe.clone());
                                match self.duplicates {
                                    Duplicates::Reject => {
                                        self.error(path, format!("duplicate entries for key {pe}"))
                                    }
                                    // The repeated item is owned once, as a whole.
                                    Duplicates::Allow if first_repeat && collect && !atomic => {
                                        path.push(pe.clone());
                                        self.set.insert(path);
                                        path.pop();
                                    }
                                    Duplicates::Allow => {}
                                }
                            }
                            elements.push(Some(pe));
                        }
                    }
                }
                for (item, pe) in list.iter().zip(elements) {
                    let Some(pe) = pe else { continue };
                    let owned = collect && !atomic && !duplicated.contains(&pe);
                    path.push(pe);
                    self.walk(*items, item, path, owned, depth + 1);
                    if owned {
                        self.set.insert(path);
                    }
                    path.pop();
                }
            }
        }
    }
}
