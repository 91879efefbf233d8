//! Server-side printing: the `meta.k8s.io/v1 Table` kubectl asks for (negotiated in
//! `negotiation`, as every other form of an answer).

use super::negotiation::{MetaVersion, partial};
use super::*;

/// Kubernetes' short human durations (`5s`, `3m20s`, `2d4h`, `3y12d`).
pub(crate) fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 && s % 60 != 0 => format!("{m}m{}s", s % 60),
        _ if m < 180 => format!("{m}m"),
        _ if h < 8 && m % 60 != 0 => format!("{h}h{}m", m % 60),
        _ if h < 48 => format!("{h}h"),
        _ if h < 24 * 8 && h % 24 != 0 => format!("{d}d{}h", h % 24),
        _ if d < 365 * 2 => format!("{d}d"),
        _ if d / 365 < 8 && d % 365 != 0 => format!("{}y{}d", d / 365, d % 365),
        _ => format!("{}y", d / 365),
    }
}

pub(super) fn age(obj: &Value) -> String {
    let created =
        meta::get(obj, "creationTimestamp").and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match created {
        Some(created) => human_duration(jiff::Timestamp::now().as_second() - created.as_second()),
        None => "<unknown>".into(),
    }
}

/// A Table of `objects` in `version`, each row's object as `include` says (`None`,
/// `Metadata`, `Object`); with `headers`, the column definitions too.
pub(crate) fn table(
    kind: &dyn Kind,
    version: MetaVersion,
    include: &str,
    objects: &[&Value],
    list_meta: &Value,
    headers: bool,
) -> Value {
    let columns = kind.columns();
    // kubectl shows columns in definition order, hiding priority > 0 unless `-o wide`, and
    // Kubernetes puts AGE after the default columns and before the wide ones.
    let (normal, wide): (Vec<usize>, Vec<usize>) =
        (0..columns.len()).partition(|&i| columns[i].priority == 0);
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let kind_cells = kind.cells(obj);
            let cell = |i: &usize| kind_cells.get(*i).cloned().unwrap_or(Value::Null);
            let cells: Vec<Value> = if kind.whole_row() {
                (0..columns.len()).map(|i| cell(&i)).collect()
            } else {
                let mut cells = vec![json!(meta::name(obj).unwrap_or_default())];
                cells.extend(normal.iter().map(cell));
                cells.push(json!(age(obj)));
                cells.extend(wide.iter().map(cell));
                cells
            };
            let object = match include {
                "None" => Value::Null,
                "Object" => (*obj).clone(),
                _ => partial(version, obj),
            };
            json!({ "cells": cells, "object": object })
        })
        .collect();
    let definition = |c: &Column| json!({ "name": c.name, "type": c.type_, "format": "", "description": c.description, "priority": c.priority });
    let definitions: Vec<Value> = if kind.whole_row() {
        columns.iter().map(definition).collect()
    } else {
        let mut definitions = vec![
            json!({ "name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0 }),
        ];
        definitions.extend(normal.iter().map(|&i| definition(&columns[i])));
        definitions.push(json!({ "name": "Age", "type": "string", "format": "", "description": "Time since the object was created.", "priority": 0 }));
        definitions.extend(wide.iter().map(|&i| definition(&columns[i])));
        definitions
    };
    let mut metadata = json!({});
    if let Some(rv) = list_meta.get("resourceVersion") {
        metadata["resourceVersion"] = rv.clone();
    }
    if let Some(next) = list_meta.get("continue") {
        metadata["continue"] = next.clone();
    }
    let mut table = json!({ "kind": "Table", "apiVersion": version.api_version(), "metadata": metadata, "rows": rows });
    if headers {
        table["columnDefinitions"] = json!(definitions);
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (125, "2m5s"),
            (600, "10m"),
            (3 * 3600 + 60, "3h1m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 3600, "3d1h"),
            (20 * 86400, "20d"),
            (3 * 365 * 86400 + 86400, "3y1d"),
        ];
        for (seconds, text) in cases {
            assert_eq!(human_duration(seconds), text, "{seconds}s");
        }
    }
}
