//! Field paths and sets of fields, after structured-merge-diff's `fieldpath` package: a
//! [`PathElement`] selects a child (a field, an associative-list item by its keys, a set item
//! by its value, an atomic-list item by its index), a [`Path`] is a sequence of them, and a
//! [`Set`] is a tree of paths, the unit of ownership in `metadata.managedFields`.
//!
//! [`Set::to_json`] and [`Set::from_json`] are the `FieldsV1` encoding
//! (`{"f:spec":{"f:replicas":{}},...}`), written byte for byte as Kubernetes writes it.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

use super::value::{self, write_go_json, write_go_json_string};
use crate::json::MAX_NESTING_DEPTH;

/// Selects one child of a value.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// A field of an object (`f:name`), printed `.name`.
    Field(String),
    /// An associative-list item identified by the values of its key fields, sorted by name
    /// (`k:{"name":"c"}`), printed `[name="c"]`.
    Key(Vec<(String, Value)>),
    /// A set item identified by its value (`v:"x"`), printed `[="x"]`.
    Value(Value),
    /// An atomic-list item by index (`i:0`), printed `[0]`.
    Index(i64),
}

impl PathElement {
    /// A field name element.
    pub fn field(name: impl Into<String>) -> Self {
        PathElement::Field(name.into())
    }

    /// An associative-list key element from `(name, value)` pairs, in any order.
    pub fn key<I, S>(fields: I) -> Self
    where
        I: IntoIterator<Item = (S, Value)>,
        S: Into<String>,
    {
        let mut fields: Vec<(String, Value)> =
            fields.into_iter().map(|(k, v)| (k.into(), v)).collect();
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        PathElement::Key(fields)
    }

    fn kind_rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `FieldsV1` key of this element (`f:name`, `k:{...}`, `v:...`, `i:N`), before it is
    /// escaped as a JSON object key.
    pub fn serialize(&self) -> String {
        let mut out = String::new();
        match self {
            PathElement::Field(name) => {
                out.push_str("f:");
                out.push_str(name);
            }
            PathElement::Key(fields) => {
                out.push_str("k:{");
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_go_json_string(&mut out, name);
                    out.push(':');
                    write_go_json(&mut out, v);
                }
                out.push('}');
            }
            PathElement::Value(v) => {
                out.push_str("v:");
                write_go_json(&mut out, v);
            }
            PathElement::Index(i) => {
                out.push_str("i:");
                out.push_str(&i.to_string());
            }
        }
        out
    }

    /// Parses a `FieldsV1` key. `Ok(None)` for a key of a type this version does not know
    /// (Kubernetes drops those rather than fail).
    pub fn deserialize(key: &str) -> Result<Option<PathElement>, FieldsV1Error> {
        let bad = |reason: String| FieldsV1Error::Key {
            key: key.to_string(),
            reason,
        };
        let bytes = key.as_bytes();
        if bytes.len() < 2 {
            return Err(bad("key must be 2 characters long".into()));
        }
        if bytes[1] != b':' {
            return Err(bad("missing colon".into()));
        }
        let rest = &key[2..];
        let parse = |what: &str| {
            serde_json::from_str::<Value>(rest)
                .map_err(|e| bad(format!("the {what} is not valid JSON: {e}")))
        };
        Ok(Some(match bytes[0] {
            b'f' => PathElement::Field(rest.to_string()),
            b'v' => PathElement::Value(parse("value")?),
            b'k' => match parse("key")? {
                Value::Object(members) => PathElement::key(members),
                Value::Null => PathElement::Key(Vec::new()),
                _ => return Err(bad("the key is not a JSON object".into())),
            },
            b'i' => PathElement::Index(
                rest.parse()
                    .map_err(|_| bad(format!("{rest:?} is not a list index")))?,
            ),
            _ => return Ok(None),
        }))
    }
}

impl Ord for PathElement {
    /// smd's order: field names, then keys, then values, then indices.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                value::lexicographic(a, b, |(an, av), (bn, bv)| {
                    an.cmp(bn).then_with(|| value::compare(av, bv))
                })
            }
            (PathElement::Value(a), PathElement::Value(b)) => value::compare(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.kind_rank().cmp(&other.kind_rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    /// As smd's `PathElement.String()` prints it in conflicts and errors.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={}", value::to_string(v))?;
                }
                f.write_str("]")
            }
            PathElement::Value(v) => write!(f, "[={}]", value::to_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A sequence of path elements from the object's root.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Path(pub Vec<PathElement>);

impl Path {
    /// The empty path (the whole object, which no one owns).
    pub fn root() -> Self {
        Path(Vec::new())
    }

    /// A path of field names (`Path::fields(&["spec", "replicas"])`).
    pub fn fields(names: &[&str]) -> Self {
        Path(names.iter().map(|n| PathElement::field(*n)).collect())
    }

    /// This path with `pe` appended.
    pub fn child(&self, pe: PathElement) -> Self {
        let mut elements = self.0.clone();
        elements.push(pe);
        Path(elements)
    }
}

impl From<Vec<PathElement>> for Path {
    fn from(elements: Vec<PathElement>) -> Self {
        Path(elements)
    }
}

impl fmt::Display for Path {
    /// `.spec.containers[name="c"].image`, as smd's `Path.String()`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|pe| write!(f, "{pe}"))
    }
}

/// Why a `FieldsV1` document does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsV1Error {
    /// The text is not JSON.
    #[error("FieldsV1 is not valid JSON: {0}")]
    Json(String),
    /// A value in the tree is not an object (every node of `FieldsV1` is one).
    #[error("FieldsV1 at {at:?}: expected an object, got {got}")]
    NotAnObject {
        /// The key whose value is wrong (empty for the document itself).
        at: String,
        /// The JSON type found.
        got: &'static str,
    },
    /// A key is not a path element.
    #[error("FieldsV1 key {key:?}: {reason}")]
    Key {
        /// The key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The tree nests deeper than any object may.
    #[error("FieldsV1 nests deeper than {limit} levels")]
    TooDeep {
        /// The limit ([`MAX_NESTING_DEPTH`]).
        limit: usize,
    },
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A set of fields: a tree whose `members` are the fields in the set and whose `children`
/// hold the members below a field (a field can be both, or only a parent).
///
/// Sets are only as deep as the values or `FieldsV1` documents they come from, which are
/// bounded by [`MAX_NESTING_DEPTH`], so the recursive operations below stay shallow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    /// Sorted, unique.
    members: Vec<PathElement>,
    /// Sorted by element, unique, each subset non-empty.
    children: Vec<(PathElement, Set)>,
}

fn find<T>(
    items: &[T],
    pe: &PathElement,
    key: impl Fn(&T) -> &PathElement,
) -> Result<usize, usize> {
    items.binary_search_by(|item| key(item).cmp(pe))
}

impl Set {
    /// The empty set.
    pub fn new() -> Self {
        Set::default()
    }

    /// A set of these paths.
    pub fn from_paths<'p>(paths: impl IntoIterator<Item = &'p Path>) -> Self {
        let mut set = Set::new();
        for path in paths {
            set.insert(&path.0);
        }
        set
    }

    /// Adds the field at `path` (its parents are not added). The empty path is ignored: no
    /// one owns the whole object.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        let mut set = self;
        for pe in parents {
            set = set.descend(pe);
        }
        if let Err(at) = find(&set.members, last, |m| m) {
            set.members.insert(at, last.clone());
        }
    }

    fn descend(&mut self, pe: &PathElement) -> &mut Set {
        let at = match find(&self.children, pe, |c| &c.0) {
            Ok(at) => at,
            Err(at) => {
                self.children.insert(at, (pe.clone(), Set::new()));
                at
            }
        };
        &mut self.children[at].1
    }

    /// Whether the field at `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut set = self;
        for pe in parents {
            match set.child(pe) {
                Some(child) => set = child,
                None => return false,
            }
        }
        find(&set.members, last, |m| m).is_ok()
    }

    /// Whether `pe` is a member at this level.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        find(&self.members, pe, |m| m).is_ok()
    }

    /// The subset below `pe`, if any.
    pub fn child(&self, pe: &PathElement) -> Option<&Set> {
        find(&self.children, pe, |c| &c.0)
            .ok()
            .map(|at| &self.children[at].1)
    }

    /// The subset below `pe` (empty when there is none), smd's `WithPrefix`.
    pub fn with_prefix(&self, pe: &PathElement) -> Set {
        self.child(pe).cloned().unwrap_or_default()
    }

    /// The members at this level.
    pub fn members(&self) -> &[PathElement] {
        &self.members
    }

    /// The subsets below this level.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &Set)> {
        self.children.iter().map(|(pe, set)| (pe, set))
    }

    /// Replaces the subsets below this level (same elements, in the same order, each
    /// non-empty).
    pub(crate) fn replace_children(&mut self, children: Vec<(PathElement, Set)>) {
        self.children = children;
    }

    /// Whether the set has no member at any depth.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.iter().all(|(_, c)| c.is_empty())
    }

    /// How many members the set has, at every depth.
    pub fn len(&self) -> usize {
        self.members.len() + self.children.iter().map(|(_, c)| c.len()).sum::<usize>()
    }

    /// Members of either set.
    pub fn union(&self, other: &Set) -> Set {
        let mut members = self.members.clone();
        for m in &other.members {
            if let Err(at) = find(&members, m, |m| m) {
                members.insert(at, m.clone());
            }
        }
        let mut children = self.children.clone();
        for (pe, set) in &other.children {
            match find(&children, pe, |c| &c.0) {
                Ok(at) => children[at].1 = children[at].1.union(set),
                Err(at) => children.insert(at, (pe.clone(), set.clone())),
            }
        }
        Set { members, children }
    }

    /// [`Set::union`] in place, taking `other`'s elements rather than copying them.
    pub fn absorb(&mut self, other: Set) {
        for m in other.members {
            if let Err(at) = find(&self.members, &m, |m| m) {
                self.members.insert(at, m);
            }
        }
        for (pe, set) in other.children {
            match find(&self.children, &pe, |c| &c.0) {
                Ok(at) => self.children[at].1.absorb(set),
                Err(at) => self.children.insert(at, (pe, set)),
            }
        }
    }

    /// [`Set::difference`] in place.
    pub fn subtract(&mut self, other: &Set) {
        if other.members.is_empty() && other.children.is_empty() {
            return;
        }
        self.members.retain(|m| !other.has_member(m));
        self.children.retain_mut(|(pe, set)| match other.child(pe) {
            None => true,
            Some(theirs) => {
                set.subtract(theirs);
                !set.is_empty()
            }
        });
    }

    /// Members of both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        let members = self
            .members
            .iter()
            .filter(|m| other.has_member(m))
            .cloned()
            .collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, set)| {
                let both = set.intersection(other.child(pe)?);
                (!both.is_empty()).then(|| (pe.clone(), both))
            })
            .collect();
        Set { members, children }
    }

    /// Members of `self` that are not members of `other`. As smd's `Difference`, a member of
    /// `other` does not take away the members below it in `self` (use
    /// [`Set::recursive_difference`] for that).
    pub fn difference(&self, other: &Set) -> Set {
        let members = self
            .members
            .iter()
            .filter(|m| !other.has_member(m))
            .cloned()
            .collect();
        let children = self
            .children
            .iter()
            .filter_map(|(pe, set)| match other.child(pe) {
                None => Some((pe.clone(), set.clone())),
                Some(theirs) => {
                    let left = set.difference(theirs);
                    (!left.is_empty()).then(|| (pe.clone(), left))
                }
            })
            .collect();
        Set { members, children }
    }

    /// Members of `self` that are neither members of `other` nor below one of its members.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        let members = self
            .members
            .iter()
            .filter(|m| !other.has_member(m))
            .cloned()
            .collect();
        let children = self
            .children
            .iter()
            .filter(|(pe, _)| !other.has_member(pe))
            .filter_map(|(pe, set)| match other.child(pe) {
                None => Some((pe.clone(), set.clone())),
                Some(theirs) => {
                    let left = set.recursive_difference(theirs);
                    (!left.is_empty()).then(|| (pe.clone(), left))
                }
            })
            .collect();
        Set { members, children }
    }

    /// Only the members that have no members below them.
    pub fn leaves(&self) -> Set {
        let members = self
            .members
            .iter()
            .filter(|m| self.child(m).is_none())
            .cloned()
            .collect();
        let children = self
            .children
            .iter()
            .map(|(pe, set)| (pe.clone(), set.leaves()))
            .collect();
        Set { members, children }
    }

    /// Every member's path, in smd's `Iterate` order: a level's members, then each child's
    /// paths in element order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut path = prefix.clone();
            path.push(m.clone());
            out.push(Path(path));
        }
        for (pe, set) in &self.children {
            prefix.push(pe.clone());
            set.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// The `FieldsV1` JSON of the set, byte for byte as Kubernetes writes it: elements in
    /// smd's order, `"."` first in an object whose field is also a member, compact.
    pub fn to_json(&self) -> String {
        let mut out = String::new();
        self.emit(false, &mut out);
        out
    }

    fn emit(&self, include_self: bool, out: &mut String) {
        out.push('{');
        let mut first = true;
        let key = |out: &mut String, text: &str, first: &mut bool| {
            if !std::mem::take(first) {
                out.push(',');
            }
            write_go_json_string(out, text);
            out.push(':');
        };
        if include_self && !(self.members.is_empty() && self.children.is_empty()) {
            key(out, ".", &mut first);
            out.push_str("{}");
        }
        let (mut mi, mut ci) = (0, 0);
        while mi < self.members.len() || ci < self.children.len() {
            let member = self.members.get(mi);
            let child = self.children.get(ci);
            let order = match (member, child) {
                (Some(m), Some((c, _))) => m.cmp(c),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            if order == Ordering::Less {
                key(out, &self.members[mi].serialize(), &mut first);
                out.push_str("{}");
                mi += 1;
            } else {
                let (pe, set) = &self.children[ci];
                key(out, &pe.serialize(), &mut first);
                set.emit(order == Ordering::Equal, out);
                if order == Ordering::Equal {
                    mi += 1;
                }
                ci += 1;
            }
        }
        out.push('}');
    }

    /// The set as a JSON value (for embedding in a `managedFields` entry). Its object keys are
    /// those of [`Set::to_json`]; their order is the map's.
    pub fn to_value(&self) -> Value {
        Value::Object(self.value_at(false))
    }

    /// [`Set::emit`] building the object instead of its text (every write embeds one, so
    /// printing and parsing it again would cost as much as the rest of the field tracking).
    fn value_at(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        let empty = || Value::Object(Map::new());
        if include_self && !(self.members.is_empty() && self.children.is_empty()) {
            out.insert(".".into(), empty());
        }
        for member in &self.members {
            out.insert(member.serialize(), empty());
        }
        for (pe, set) in &self.children {
            let is_member = find(&self.members, pe, |m| m).is_ok();
            out.insert(pe.serialize(), Value::Object(set.value_at(is_member)));
        }
        out
    }

    /// Decodes `FieldsV1` JSON text.
    pub fn from_json(text: &str) -> Result<Set, FieldsV1Error> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| FieldsV1Error::Json(e.to_string()))?;
        Set::from_value(&value)
    }

    /// Decodes a `FieldsV1` JSON value. `null` is the empty set, as Kubernetes reads it.
    pub fn from_value(value: &Value) -> Result<Set, FieldsV1Error> {
        match value {
            Value::Null => Ok(Set::new()),
            Value::Object(members) => Ok(read(members, 1)?.0.unwrap_or_default()),
            other => Err(FieldsV1Error::NotAnObject {
                at: String::new(),
                got: json_type(other),
            }),
        }
    }
}

/// Reads one `FieldsV1` object: the set below it (`None` when it has no children) and whether
/// it marks its own field a member (`"."`, or no children at all).
fn read(members: &Map<String, Value>, depth: usize) -> Result<(Option<Set>, bool), FieldsV1Error> {
    if depth > MAX_NESTING_DEPTH {
        return Err(FieldsV1Error::TooDeep {
            limit: MAX_NESTING_DEPTH,
        });
    }
    let mut is_member = false;
    let mut children: Option<Set> = None;
    for (key, v) in members {
        let inner = match v {
            Value::Object(inner) => Some(inner),
            Value::Null => None,
            other => {
                return Err(FieldsV1Error::NotAnObject {
                    at: key.clone(),
                    got: json_type(other),
                });
            }
        };
        if key == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::deserialize(key)? else {
            continue;
        };
        let (grandchildren, child_is_member) = match inner {
            Some(inner) => read(inner, depth + 1)?,
            None => (None, true),
        };
        let set = children.get_or_insert_with(Set::new);
        if child_is_member && let Err(at) = find(&set.members, &pe, |m| m) {
            set.members.insert(at, pe.clone());
        }
        if let Some(grandchildren) = grandchildren {
            match find(&set.children, &pe, |c| &c.0) {
                Ok(at) => set.children[at].1 = set.children[at].1.union(&grandchildren),
                Err(at) => set.children.insert(at, (pe, grandchildren)),
            }
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}
