//! The scenario document as a tree of values that remember where they came from.
//!
//! Every value carries its [`Origin`]: a byte span in the scenario file, or the `--set`
//! override that put it there. The loader reads typed values from this tree, so every error can
//! name the file, line, column and key (or the override) that caused it. Overrides are applied
//! to the tree before the loader runs, so an overridden value is validated exactly like one
//! written in the file.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A byte range of the scenario text.
    Span(Range<usize>),
    /// The `--set` override with this index (in command-line order).
    Override(usize),
}

/// A value and its origin.
#[derive(Clone, Debug)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where it came from.
    pub origin: Origin,
}

/// A TOML value.
#[derive(Clone, Debug)]
pub enum Value {
    /// A string.
    String(String),
    /// An integer.
    Integer(i64),
    /// A float.
    Float(f64),
    /// A boolean.
    Boolean(bool),
    /// A date or time (never valid in a scenario, kept for the error message).
    Datetime(String),
    /// An array.
    Array(Vec<Node>),
    /// A table.
    Table(Table),
}

/// A table: keys in source order.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// The entries, in the order they appear in the file (overrides that add keys come last).
    pub entries: Vec<Entry>,
}

/// One key of a table.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Where the key was written.
    pub key_origin: Origin,
    /// Its value.
    pub node: Node,
}

impl Table {
    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries.iter().find(|e| e.key == key).map(|e| &e.node)
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.entries
            .iter_mut()
            .find(|e| e.key == key)
            .map(|e| &mut e.node)
    }
}

impl Value {
    /// How a value is named in an error: "the string \"abc\"", "the integer -5", "a table".
    pub fn describe(&self) -> String {
        match self {
            Value::String(s) => format!("the string {s:?}"),
            Value::Integer(i) => format!("the integer {i}"),
            Value::Float(x) => format!("the number {x}"),
            Value::Boolean(b) => format!("the boolean {b}"),
            Value::Datetime(d) => format!("the date {d}"),
            Value::Array(_) => "an array".to_string(),
            Value::Table(_) => "a table".to_string(),
        }
    }
}

/// A TOML syntax error with its byte span.
#[derive(Clone, Debug)]
pub struct SyntaxError {
    /// Where the parser stopped.
    pub span: Option<Range<usize>>,
    /// The parser's message.
    pub message: String,
}

/// Parses scenario text into a tree.
pub fn parse_document(text: &str) -> Result<Table, SyntaxError> {
    let root = DeTable::parse(text).map_err(|e| SyntaxError {
        span: e.span(),
        message: name_the_nesting_limit(e.message().trim()),
    })?;
    let span = root.span();
    convert_table(root.into_inner(), &span)
}

/// The parser's "cannot recurse further" names no limit and no depth; say which.
fn name_the_nesting_limit(message: &str) -> String {
    if message.contains("max recursion depth") {
        let limit = super::limits::MAX_TOML_NESTING;
        format!(
            "arrays and inline tables nested more than {} deep, the TOML parser's own cap ({}); \
             a scenario needs a few levels",
            limit.max_int(),
            limit.name
        )
    } else {
        message.to_string()
    }
}

/// Parses the VALUE of a `--set PATH=VALUE` as a TOML value, or takes it as a string.
pub fn parse_override_value(text: &str, index: usize) -> Node {
    let document = format!("value = {text}");
    let converted = DeTable::parse(&document)
        .ok()
        .and_then(|t| {
            let span = t.span();
            convert_table(t.into_inner(), &span).ok()
        })
        .and_then(|mut t| t.entries.pop());
    let value = match converted {
        Some(entry) => entry.node.value,
        None => Value::String(text.to_string()),
    };
    let mut node = Node {
        value,
        origin: Origin::Override(index),
    };
    reorigin(&mut node, index);
    node
}

fn reorigin(node: &mut Node, index: usize) {
    node.origin = Origin::Override(index);
    match &mut node.value {
        Value::Array(items) => items.iter_mut().for_each(|n| reorigin(n, index)),
        Value::Table(table) => {
            for entry in &mut table.entries {
                entry.key_origin = Origin::Override(index);
                reorigin(&mut entry.node, index);
            }
        }
        _ => {}
    }
}

fn convert_table(table: DeTable<'_>, _span: &Range<usize>) -> Result<Table, SyntaxError> {
    let mut entries = Vec::with_capacity(table.len());
    for (key, value) in table {
        let key_span = key.span();
        let value_span = value.span();
        let node = convert_value(value.into_inner(), value_span)?;
        entries.push(Entry {
            key: key.into_inner().into_owned(),
            key_origin: Origin::Span(key_span),
            node,
        });
    }
    // The parser's map is sorted by key; errors and iteration should follow the file.
    entries.sort_by_key(|e| match &e.key_origin {
        Origin::Span(r) => r.start,
        Origin::Override(_) => usize::MAX,
    });
    Ok(Table { entries })
}

fn convert_value(value: DeValue<'_>, span: Range<usize>) -> Result<Node, SyntaxError> {
    let value = match value {
        DeValue::String(s) => Value::String(s.into_owned()),
        DeValue::Integer(i) => {
            let digits: String = i.as_str().chars().filter(|&c| c != '_').collect();
            match i64::from_str_radix(&digits, i.radix()) {
                Ok(v) => Value::Integer(v),
                Err(_) => {
                    return Err(SyntaxError {
                        span: Some(span),
                        message: format!("integer {i} does not fit in 64 bits"),
                    });
                }
            }
        }
        DeValue::Float(f) => match f.as_str().replace('_', "").parse::<f64>() {
            Ok(v) => Value::Float(v),
            Err(_) => {
                return Err(SyntaxError {
                    span: Some(span),
                    message: format!("invalid float {f}"),
                });
            }
        },
        DeValue::Boolean(b) => Value::Boolean(b),
        DeValue::Datetime(d) => Value::Datetime(d.to_string()),
        DeValue::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                let item_span = item.span();
                out.push(convert_value(item.into_inner(), item_span)?);
            }
            Value::Array(out)
        }
        DeValue::Table(t) => Value::Table(convert_table(t, &span)?),
    };
    Ok(Node {
        value,
        origin: Origin::Span(span),
    })
}

/// Sets `path` (dotted; array-of-table elements addressed by their `name`, or by index) to
/// `value`, creating missing tables. Keys that the loader does not know are reported by the
/// loader, like any other unknown key.
pub fn apply_override(root: &mut Table, path: &str, value: Node) -> Result<(), String> {
    let segments: Vec<&str> = path.split('.').collect();
    let most = super::limits::MAX_PATH_SEGMENTS;
    if segments.len() as u64 > most.max_int() {
        return Err(format!(
            "the path is too long: {}",
            most.exceeded(format!("{} segments", segments.len()))
        ));
    }
    if segments.iter().any(|s| s.is_empty()) {
        return Err(format!(
            "`{path}` is not a dotted path like `edge.rate_limiting` or `tenants.heavy.arrival.rate`"
        ));
    }
    let origin = value.origin.clone();
    // Joined only for an error message: joining at every step was quadratic in the path
    // (60,000 segments took 14 s).
    let prefix_to = |i: usize| segments[..=i].join(".");
    let mut table = root;
    let mut i = 0;
    while i < segments.len() {
        let key = segments[i];
        let last = i + 1 == segments.len();
        if table.get(key).is_none() {
            if last {
                table.entries.push(Entry {
                    key: key.to_string(),
                    key_origin: origin.clone(),
                    node: value,
                });
                return Ok(());
            }
            table.entries.push(Entry {
                key: key.to_string(),
                key_origin: origin.clone(),
                node: Node {
                    value: Value::Table(Table::default()),
                    origin: origin.clone(),
                },
            });
        }
        let Some(node) = table.get_mut(key) else {
            return Err(format!("internal: `{}` vanished", prefix_to(i)));
        };
        if last {
            node.value = value.value;
            node.origin = value.origin;
            return Ok(());
        }
        let describe = node.value.describe();
        match &mut node.value {
            Value::Table(inner) => {
                table = inner;
                i += 1;
            }
            Value::Array(items) if items.iter().all(|n| matches!(n.value, Value::Table(_))) => {
                let element = segments[i + 1];
                let names: Vec<String> = items
                    .iter()
                    .filter_map(|n| match &n.value {
                        Value::Table(t) => match t.get("name").map(|n| &n.value) {
                            Some(Value::String(s)) => Some(s.clone()),
                            _ => None,
                        },
                        _ => None,
                    })
                    .collect();
                let position = names
                    .iter()
                    .position(|n| n == element)
                    .or_else(|| element.parse::<usize>().ok().filter(|&k| k < items.len()));
                let Some(position) = position else {
                    // A few names are a hint; a hundred thousand would bury the error.
                    const LISTED: usize = 20;
                    let listed = names.iter().take(LISTED).cloned().collect::<Vec<_>>();
                    let more = names.len().saturating_sub(LISTED);
                    return Err(format!(
                        "`{}` has no element named `{element}` (names: {}{})",
                        prefix_to(i),
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            listed.join(", ")
                        },
                        if more > 0 {
                            format!(" and {more} more")
                        } else {
                            String::new()
                        }
                    ));
                };
                if i + 2 == segments.len() {
                    return Err(format!(
                        "`{path}` names a whole element of `{}`; set one of its keys, \
                         such as `{path}.name`",
                        prefix_to(i)
                    ));
                }
                match &mut items[position].value {
                    Value::Table(inner) => table = inner,
                    _ => {
                        return Err(format!("`{}.{element}` is not a table", prefix_to(i)));
                    }
                }
                i += 2;
            }
            _ => {
                return Err(format!(
                    "`{}` is {describe}, not a table, so `{path}` cannot be set",
                    prefix_to(i)
                ));
            }
        }
    }
    Ok(())
}

/// Line and column (both 1-based, column in characters) of byte offset `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let mut line = 1;
    let mut line_start = 0;
    for (i, b) in text.bytes().enumerate().take(offset) {
        if b == b'\n' {
            line += 1;
            line_start = i + 1;
        }
    }
    let col = text
        .get(line_start..offset)
        .map_or(offset - line_start, |s| s.chars().count())
        + 1;
    (line, col)
}

/// Writes a tree back as TOML: top-level keys, then `[tables]`, then `[[arrays of tables]]`,
/// nested tables inline. Comments and layout of the original are not kept.
pub fn to_toml(root: &Table) -> String {
    let mut out = String::new();
    let is_table = |n: &Node| matches!(n.value, Value::Table(_));
    let is_table_array = |n: &Node| match &n.value {
        Value::Array(items) => !items.is_empty() && items.iter().all(is_table),
        _ => false,
    };
    for e in &root.entries {
        if !is_table(&e.node) && !is_table_array(&e.node) {
            out.push_str(&format!("{} = {}\n", key_text(&e.key), inline(&e.node)));
        }
    }
    for e in &root.entries {
        if let Value::Table(t) = &e.node.value {
            out.push_str(&format!("\n[{}]\n", key_text(&e.key)));
            for inner in &t.entries {
                out.push_str(&format!(
                    "{} = {}\n",
                    key_text(&inner.key),
                    inline(&inner.node)
                ));
            }
        }
    }
    for e in &root.entries {
        if let (true, Value::Array(items)) = (is_table_array(&e.node), &e.node.value) {
            for item in items {
                out.push_str(&format!("\n[[{}]]\n", key_text(&e.key)));
                if let Value::Table(t) = &item.value {
                    for inner in &t.entries {
                        out.push_str(&format!(
                            "{} = {}\n",
                            key_text(&inner.key),
                            inline(&inner.node)
                        ));
                    }
                }
            }
        }
    }
    out
}

fn key_text(key: &str) -> String {
    if !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        key.to_string()
    } else {
        quote(key)
    }
}

fn quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn inline(node: &Node) -> String {
    match &node.value {
        Value::String(s) => quote(s),
        Value::Integer(i) => i.to_string(),
        Value::Float(x) if x.is_nan() => "nan".to_string(),
        Value::Float(x) if x.is_infinite() => if *x > 0.0 { "inf" } else { "-inf" }.to_string(),
        Value::Float(x) => {
            let text = x.to_string();
            if text.contains(['.', 'e', 'E']) {
                text
            } else {
                format!("{text}.0")
            }
        }
        Value::Boolean(b) => b.to_string(),
        Value::Datetime(d) => d.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(inline).collect::<Vec<_>>().join(", ")
        ),
        Value::Table(t) => {
            if t.entries.is_empty() {
                "{}".to_string()
            } else {
                format!(
                    "{{ {} }}",
                    t.entries
                        .iter()
                        .map(|e| format!("{} = {}", key_text(&e.key), inline(&e.node)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        }
    }
}

impl Table {
    /// The value of `key`, mutably.
    pub fn get_mut_node(&mut self, key: &str) -> Option<&mut Node> {
        self.get_mut(key)
    }

    /// Removes `key`; returns whether it was there.
    pub fn remove(&mut self, key: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.key != key);
        self.entries.len() != before
    }

    /// Sets `key` to `value` (appending the key if it is new).
    pub fn set(&mut self, key: &str, value: Value) {
        match self.get_mut(key) {
            Some(node) => node.value = value,
            None => self.entries.push(Entry {
                key: key.to_string(),
                key_origin: Origin::Override(usize::MAX),
                node: Node {
                    value,
                    origin: Origin::Override(usize::MAX),
                },
            }),
        }
    }
}

/// The dotted key nearest to byte `offset`, for syntax errors (which the parser reports
/// without one): the enclosing table header (an array-of-tables element by its `name`, when
/// written before the offset) and the key being assigned on that line. Empty only when the
/// offset is before any key.
pub fn key_near(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or("");
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let line = text.get(line_start..line_end).unwrap_or("").trim();
    let bare = |s: &str| {
        let s = s.trim();
        (!s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ')))
        .then(|| s.split_whitespace().collect::<Vec<_>>().join(""))
    };
    if line.starts_with('[') {
        return bare(line.trim_matches(|c| c == '[' || c == ']')).unwrap_or_default();
    }
    let assigned = line.split_once('=').and_then(|(k, _)| bare(k));
    // The enclosing header, and the element's name if it was set before this line.
    let mut header = String::new();
    let mut in_array = false;
    let mut element_name = None;
    for previous in text[..line_start].lines() {
        let previous = previous.trim();
        if previous.starts_with('[') {
            header = bare(previous.trim_matches(|c| c == '[' || c == ']')).unwrap_or_default();
            in_array = previous.starts_with("[[");
            element_name = None;
        } else if let Some((k, v)) = previous.split_once('=')
            && in_array
            && k.trim() == "name"
        {
            if let Some(v) = bare(v.trim().trim_matches('"')) {
                element_name = Some(v);
            }
        }
    }
    let mut parts: Vec<String> = Vec::new();
    if !header.is_empty() {
        parts.push(header);
    }
    if let Some(name) = element_name {
        parts.push(name);
    }
    if let Some(k) = assigned {
        parts.push(k);
    }
    parts.join(".")
}

#[cfg(test)]
mod writer_tests {
    use super::*;

    /// `MAX_TOML_NESTING` is the parser's cap: that many levels parse, one more is refused
    /// with the limit named.
    #[test]
    fn the_nesting_limit_is_the_parsers() {
        let depth = super::super::limits::MAX_TOML_NESTING.max_int() as usize;
        let nested = |n: usize| format!("v = {}{}\n", "[".repeat(n), "]".repeat(n));
        assert!(parse_document(&nested(depth)).is_ok());
        let error = parse_document(&nested(depth + 1)).expect_err("one level too deep");
        assert!(
            error.message.contains("(MAX_TOML_NESTING)"),
            "{}",
            error.message
        );
        let tables = format!(
            "v = {}1{}\n",
            "{a = ".repeat(depth + 1),
            "}".repeat(depth + 1)
        );
        let error = parse_document(&tables).expect_err("one level too deep");
        assert!(
            error.message.contains("(MAX_TOML_NESTING)"),
            "{}",
            error.message
        );
    }

    #[test]
    fn round_trips_a_scenario_shape() {
        let text = r#"
name = "x"
[simulation]
duration = "60s"
[[tenants]]
name = "a"
arrival = { process = "poisson", rate = 1000000.0 }
retry = { budget = { ratio = 0.1 } }
[[tenants]]
name = "b b"
tags = ["q\"uote", 'back\slash']
"#;
        let tree = parse_document(text).expect("parses");
        let written = to_toml(&tree);
        let again = parse_document(&written).expect("written TOML parses");
        assert_eq!(to_toml(&again), written, "{written}");
        assert!(written.contains("rate = 1000000.0"), "{written}");
        assert!(written.contains("[[tenants]]\nname = \"b b\""), "{written}");
    }
}
