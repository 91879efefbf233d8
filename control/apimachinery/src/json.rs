//! Bounds on JSON values built from client input, checked without recursion: how deeply a
//! value nests, how long its JSON encoding is, and dropping a value however deeply it nests.
//!
//! A client decides the shape of every document the apiserver handles, and serde's own `Drop`,
//! `Clone` and encoder recurse once per level, so a deep enough document overflows the stack.
//! Request bodies are safe on arrival: serde_json refuses to parse deeper than
//! [`MAX_NESTING_DEPTH`]. What the apiserver builds from them (a JSON patch's result) is kept
//! within the same depth with [`measure`] and, until then, dropped with [`discard`].

use serde_json::Value;

/// The deepest nesting of arrays and objects serde_json parses (its recursion limit of 128
/// admits 127 levels). No request body can be deeper, and nothing the apiserver stores may be,
/// or it could not read it back.
pub const MAX_NESTING_DEPTH: usize = 127;

/// The size of a JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measure {
    /// The length in bytes of its compact JSON encoding (what `serde_json::to_vec` writes).
    pub encoded_len: usize,
    /// How many arrays and objects nest in it: 0 for a scalar, 1 for `[]` or `{"a": 1}`.
    pub depth: usize,
}

/// Which bound of [`measure`] a value exceeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// Its encoding is longer than `max_len`.
    Length,
    /// It nests deeper than `max_depth`.
    Depth,
}

/// The containers [`measure`] is inside of, with the children it has yet to visit.
enum Open<'v> {
    Items(std::slice::Iter<'v, Value>),
    Members(serde_json::map::Iter<'v>),
}

/// Measures `value`, stopping as soon as it is longer than `max_len` or deeper than
/// `max_depth`: the walk costs at most about `max_len` steps (each value adds at least one byte),
/// however large the value is, and no allocation beyond one entry per level.
pub fn measure(value: &Value, max_len: usize, max_depth: usize) -> Result<Measure, Exceeded> {
    let mut encoded_len = 0usize;
    let mut depth = 0;
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut next = Some(value);
    loop {
        if let Some(value) = next.take() {
            encoded_len = encoded_len.saturating_add(match value {
                // Brackets, then a comma between items.
                Value::Array(items) => {
                    open.push(Open::Items(items.iter()));
                    2 + items.len().saturating_sub(1)
                }
                // Braces, a colon per member, then a comma between members.
                Value::Object(members) => {
                    open.push(Open::Members(members.iter()));
                    2 + members.len() + members.len().saturating_sub(1)
                }
                scalar => scalar_len(scalar),
            });
            depth = depth.max(open.len());
            if depth > max_depth {
                return Err(Exceeded::Depth);
            }
            if encoded_len > max_len {
                return Err(Exceeded::Length);
            }
        }
        let Some(container) = open.last_mut() else {
            break;
        };
        match container {
            Open::Items(items) => next = items.next(),
            Open::Members(members) => {
                next = members.next().map(|(key, value)| {
                    encoded_len = encoded_len.saturating_add(string_len(key));
                    value
                });
            }
        }
        if next.is_none() {
            open.pop();
        }
    }
    Ok(Measure { encoded_len, depth })
}

fn scalar_len(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(true) => 4,
        Value::Bool(false) => 5,
        Value::Number(number) => {
            use std::fmt::Write;
            // Counts what Display writes (the encoder's digits) without allocating them.
            struct Count(usize);
            impl Write for Count {
                fn write_str(&mut self, s: &str) -> std::fmt::Result {
                    self.0 += s.len();
                    Ok(())
                }
            }
            let mut count = Count(0);
            let _ = write!(count, "{number}");
            count.0
        }
        Value::String(text) => string_len(text),
        Value::Array(_) | Value::Object(_) => 0,
    }
}

/// The length of a string's JSON encoding: quotes, plus the escapes serde_json writes.
fn string_len(text: &str) -> usize {
    let escapes: usize = text
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 1,
            0..0x20 => 5,
            _ => 0,
        })
        .sum();
    text.len() + 2 + escapes
}

/// The children a [`discard`] has yet to take apart.
enum Children {
    Items(std::vec::IntoIter<Value>),
    Members(serde_json::map::IntoIter),
}

/// Drops `value` one level at a time instead of recursing, so a value of any depth can be
/// dropped on any stack. Memory use is one entry per level.
pub fn discard(value: Value) {
    let mut pending = Vec::new();
    let mut next = Some(value);
    loop {
        // Each container gives up its children before it is dropped, empty.
        match next.take() {
            Some(Value::Array(items)) => pending.push(Children::Items(items.into_iter())),
            Some(Value::Object(members)) => pending.push(Children::Members(members.into_iter())),
            Some(_scalar) => {}
            None => {}
        }
        let Some(children) = pending.last_mut() else {
            return;
        };
        next = match children {
            Children::Items(items) => items.next(),
            Children::Members(members) => members.next().map(|(_, value)| value),
        };
        if next.is_none() {
            pending.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `depth` arrays inside each other around a zero, built without recursion.
    fn nested(depth: usize) -> Value {
        let mut value = json!(0);
        for _ in 0..depth {
            value = Value::Array(vec![value]);
        }
        value
    }

    #[test]
    fn measure_gives_the_encoded_length_and_depth() {
        for value in [
            json!(null),
            json!(false),
            json!(-12.5e-7),
            json!(u64::MAX),
            json!("tab\t, quote \", control \u{1}, é"),
            json!([]),
            json!({}),
            json!([1, [2, [3]], {"a": {"b": "c"}, "": []}]),
            json!({"k\"": [null, true, "x"], "z": {}}),
        ] {
            let measured = measure(&value, usize::MAX, usize::MAX).unwrap();
            assert_eq!(
                measured.encoded_len,
                serde_json::to_vec(&value).unwrap().len(),
                "{value}"
            );
        }
        let depth = |value: Value| measure(&value, usize::MAX, usize::MAX).unwrap().depth;
        assert_eq!(depth(json!("x")), 0);
        assert_eq!(depth(json!([])), 1);
        assert_eq!(depth(json!({"a": [1, {"b": []}], "c": 1})), 4);
        assert_eq!(depth(nested(500)), 500);
    }

    #[test]
    fn measure_stops_at_its_bounds() {
        let value = json!({"a": "x".repeat(10)});
        let len = serde_json::to_vec(&value).unwrap().len();
        assert_eq!(measure(&value, len, 1).unwrap().encoded_len, len);
        assert_eq!(measure(&value, len - 1, 1), Err(Exceeded::Length));
        assert_eq!(measure(&value, len, 0), Err(Exceeded::Depth));
        assert_eq!(
            measure(&nested(128), usize::MAX, MAX_NESTING_DEPTH),
            Err(Exceeded::Depth)
        );
        assert!(measure(&nested(127), usize::MAX, MAX_NESTING_DEPTH).is_ok());
    }

    #[test]
    fn max_nesting_depth_is_what_serde_json_parses() {
        let text = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(serde_json::from_str::<Value>(&text(MAX_NESTING_DEPTH)).is_ok());
        assert!(serde_json::from_str::<Value>(&text(MAX_NESTING_DEPTH + 1)).is_err());
    }

    #[test]
    fn discard_drops_a_value_too_deep_for_recursion() {
        // A plain drop of this recurses a million times and overflows any thread's stack.
        let mut value = json!({});
        for i in 0..1_000_000 {
            // (Not `json!`: it would copy `value` through serde, recursively.)
            value = if i % 2 == 0 {
                Value::Array(vec![json!(1), value])
            } else {
                let mut members = serde_json::Map::new();
                members.insert("k".to_owned(), value);
                members.insert("j".to_owned(), json!("x"));
                Value::Object(members)
            };
        }
        discard(value);
        discard(json!([1, {"a": [2, 3]}, "x"]));
    }
}
