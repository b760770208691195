//! Tenant tables: tenants listed in a CSV file next to the scenario, parsed strictly, every
//! problem reported as `file:line:column: column `name`: message`; and the file's digest for
//! report.json.
//!
//! The format (RFC 4180 CSV with one record per line, UTF-8, `\n` or `\r\n` line ends):
//! - the first line that is not a comment is the header: column names, in any order, each at
//!   most once: `name` and `tier` (required), `rate`, `schedule`, `cell`, `region`,
//!   `eu_only`, `mix` (optional);
//! - every other line is one tenant with exactly as many fields as the header; lines starting
//!   with `#` are comments, blank lines are skipped; a UTF-8 byte-order mark is ignored;
//! - `name`, `tier`, `cell`, `region`, `schedule`: names as in the scenario (`[a-z0-9-]`, not
//!   starting with a dash, 1 to 64 characters); a tenant name at most once per table;
//! - `rate`: requests per second, a number above 0 and at most `MAX_RATE`; a row without one
//!   takes the scenario's rule (its entry's `arrival` rate, or in a replay none of its own);
//! - `eu_only`: `true` or `false` (empty is `false`);
//! - `mix`: the request-class mix, `class:fraction` pairs separated by `;`, such as
//!   `api:0.9;report:0.1` (spaces around either separator allowed), each class at most once,
//!   each fraction above 0, summing to 1 within 1e-6; empty means the scenario's default;
//! - an empty optional cell means "not set"; a field may be quoted (`"a,b"`, `""` for a quote
//!   inside), but a record is one line: a quoted field cannot hold a line break.
//!
//! Limits (`scenario::limits`): `MAX_TABLE_BYTES` per file, `MAX_TABLE_ROWS` tenants,
//! `MAX_LINE_BYTES` per line; each error names the limit. At most `MAX_DIAGNOSTICS` errors
//! are listed, then a count of the rest.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use sha2::{Digest, Sha256};

use super::Diagnostic;
use super::is_valid_name;
use super::limits::{MAX_DIAGNOSTICS, MAX_LINE_BYTES, MAX_RATE, MAX_TABLE_BYTES, MAX_TABLE_ROWS};

/// One tenant of a table, as written (names are not resolved here).
#[derive(Clone, Debug, PartialEq)]
pub struct TenantRow {
    /// The row's line in the file (1-based).
    pub line: u64,
    /// Tenant name.
    pub name: String,
    /// Tier name.
    pub tier: String,
    /// Requests per second, if set.
    pub rate: Option<f64>,
    /// Schedule name, if set.
    pub schedule: Option<String>,
    /// Pinned cell, if set.
    pub cell: Option<String>,
    /// Region, if set.
    pub region: Option<String>,
    /// EU data residency.
    pub eu_only: bool,
    /// Request-class mix `(class, fraction)` in the written order, if set.
    pub mix: Option<Vec<(String, f64)>>,
}

/// One problem in a table: where (line and column, 1-based; line 0 is the whole file), which
/// column, and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableError {
    /// The table's path as the scenario names it.
    pub path: String,
    /// Line, 1-based; 0 for the file as a whole.
    pub line: u64,
    /// Column in characters, 1-based; 0 when the line as a whole is at fault.
    pub column: u64,
    /// The column's name from the header, if the problem is in one.
    pub column_name: Option<String>,
    /// What was expected and what was found.
    pub message: String,
}

impl TableError {
    /// `path:line:column`, as far as known.
    pub fn location(&self) -> String {
        match (self.line, self.column) {
            (0, _) => self.path.clone(),
            (line, 0) => format!("{}:{line}", self.path),
            (line, column) => format!("{}:{line}:{column}", self.path),
        }
    }

    /// As a scenario diagnostic, its key `key` (the scenario key that named the table) with
    /// the column appended: `tenant_table.rate`.
    pub fn to_diagnostic(&self, key: &str) -> Diagnostic {
        Diagnostic {
            location: self.location(),
            key: match &self.column_name {
                Some(column) => format!("{key}.{column}"),
                None => key.to_string(),
            },
            message: self.message.clone(),
        }
    }
}

impl fmt::Display for TableError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column_name {
            Some(column) => write!(
                f,
                "{}: column `{column}`: {}",
                self.location(),
                self.message
            ),
            None => write!(f, "{}: {}", self.location(), self.message),
        }
    }
}

/// The columns a table may have.
const COLUMNS: [&str; 8] = [
    "name", "tier", "rate", "schedule", "cell", "region", "eu_only", "mix",
];

const NAME_RULE: &str = "a name of lowercase letters, digits and dashes (not starting with a dash, at most 64 characters)";

/// `sha256:` and the hex SHA-256 of `bytes`: the digest report.json records for a table.
pub fn table_digest(bytes: &[u8]) -> String {
    super::inputs::digest_text(&Sha256::digest(bytes))
}

/// Collects errors up to `MAX_DIAGNOSTICS`, counting the rest.
struct Errors<'p> {
    path: &'p str,
    list: Vec<TableError>,
}

impl Errors<'_> {
    fn push(&mut self, line: u64, column: u64, column_name: Option<&str>, message: String) {
        if !self.full() {
            self.list.push(TableError {
                path: self.path.to_string(),
                line,
                column,
                column_name: column_name.map(str::to_string),
                message,
            });
        }
    }

    fn full(&self) -> bool {
        self.list.len() >= MAX_DIAGNOSTICS
    }

    fn finish(mut self) -> Vec<TableError> {
        if self.full() {
            self.list.push(TableError {
                path: self.path.to_string(),
                line: 0,
                column: 0,
                column_name: None,
                message: format!(
                    "stopped after the first {MAX_DIAGNOSTICS} errors; the rest of the table was not checked"
                ),
            });
        }
        self.list
    }
}

/// One field of a line: its text (unquoted) and the 1-based character column it starts at.
type Field<'a> = (Cow<'a, str>, u64);

/// Splits one line into fields, strictly (RFC 4180 on one line): a field is plain text without
/// `"`, or wholly quoted with `""` for a quote inside; after a closing quote comes `,` or the
/// end of the line. An error is the column and what was wrong.
fn split_line(raw: &str) -> Result<Vec<Field<'_>>, (u64, String)> {
    let mut fields = Vec::new();
    let mut rest = raw;
    let mut column = 1u64;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut text = String::new();
            let mut chars = quoted.char_indices();
            let mut used_chars = 1u64;
            let after = loop {
                match chars.next() {
                    None => {
                        return Err((column, "this quoted field has no closing quote".into()));
                    }
                    Some((i, '"')) => {
                        used_chars += 1;
                        if quoted[i + 1..].starts_with('"') {
                            chars.next();
                            used_chars += 1;
                            text.push('"');
                        } else {
                            break &quoted[i + 1..];
                        }
                    }
                    Some((_, c)) => {
                        used_chars += 1;
                        text.push(c);
                    }
                }
            };
            fields.push((Cow::Owned(text), column));
            column += used_chars;
            match after.strip_prefix(',') {
                Some(next) => {
                    rest = next;
                    column += 1;
                }
                None if after.is_empty() => return Ok(fields),
                None => {
                    return Err((
                        column,
                        "expected a comma or the end of the line after a closing quote".into(),
                    ));
                }
            }
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let field = &rest[..end];
            if let Some(q) = field.find('"') {
                return Err((
                    column + field[..q].chars().count() as u64,
                    "a quote may only start a field (quote the whole field and double the quote \
                     inside: \"a \"\"b\"\"\")"
                        .into(),
                ));
            }
            fields.push((Cow::Borrowed(field), column));
            column += field.chars().count() as u64 + 1;
            if end == rest.len() {
                return Ok(fields);
            }
            rest = &rest[end + 1..];
        }
    }
}

/// Parses a tenant table (see the module documentation): every tenant, or every problem.
pub fn parse_tenant_table(bytes: &[u8], path: &str) -> Result<Vec<TenantRow>, Vec<TableError>> {
    let mut errors = Errors {
        path,
        list: Vec::new(),
    };
    if bytes.len() as u64 > MAX_TABLE_BYTES.max_int() {
        errors.push(
            0,
            0,
            None,
            MAX_TABLE_BYTES.exceeded(format!("a tenant table of {} bytes", bytes.len())),
        );
        return Err(errors.finish());
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = valid.iter().filter(|&&b| b == b'\n').count() as u64 + 1;
            let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let column = String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count() as u64
                + 1;
            errors.push(
                line,
                column,
                None,
                "expected UTF-8 text: this byte is not valid UTF-8".into(),
            );
            return Err(errors.finish());
        }
    };
    let mut header: Option<Header> = None;
    let mut rows: Vec<TenantRow> = Vec::new();
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    for (index, raw) in text.split('\n').enumerate() {
        let line = index as u64 + 1;
        if errors.full() {
            break;
        }
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if raw.len() as u64 > MAX_LINE_BYTES.max_int() {
            errors.push(
                line,
                0,
                None,
                MAX_LINE_BYTES.exceeded(format!("a line of {} bytes", raw.len())),
            );
            continue;
        }
        if raw.trim().is_empty() || raw.starts_with('#') {
            continue;
        }
        let fields = match split_line(raw) {
            Ok(fields) => fields,
            Err((column, message)) => {
                errors.push(line, column, None, message);
                continue;
            }
        };
        let Some(head) = &header else {
            header = Header::parse(&fields, line, &mut errors);
            if header.is_none() {
                return Err(errors.finish());
            }
            continue;
        };
        if fields.len() != head.count {
            errors.push(
                line,
                0,
                None,
                format!(
                    "expected {} fields, as in the header on line {}, found {}",
                    head.count,
                    head.line,
                    fields.len()
                ),
            );
            continue;
        }
        if rows.len() as u64 >= MAX_TABLE_ROWS.max_int() {
            errors.push(
                line,
                0,
                None,
                MAX_TABLE_ROWS.exceeded(format!("a table of {} rows", rows.len() + 1)),
            );
            break;
        }
        // A name is taken by its first row even if that row has other errors, so a duplicate
        // is reported however the first one fared.
        let (name, name_column) = &fields[head.index["name"]];
        let duplicate = match seen.get(name.as_ref()) {
            Some(first) => {
                errors.push(
                    line,
                    *name_column,
                    Some("name"),
                    format!("tenant {name:?} is already on line {first}"),
                );
                true
            }
            None => {
                if is_valid_name(name) {
                    seen.insert(name.to_string(), line);
                }
                false
            }
        };
        if let Some(row) = head.row(&fields, line, &mut errors) {
            if !duplicate {
                rows.push(row);
            }
        }
    }
    if header.is_none() && errors.list.is_empty() {
        errors.push(
            0,
            0,
            None,
            format!(
                "expected a header line naming the columns ({})",
                COLUMNS.join(", ")
            ),
        );
    }
    if errors.list.is_empty() {
        Ok(rows)
    } else {
        Err(errors.finish())
    }
}

/// The header: column names in file order and where each known column is.
struct Header {
    line: u64,
    count: usize,
    index: BTreeMap<&'static str, usize>,
}

impl Header {
    fn parse(fields: &[Field<'_>], line: u64, errors: &mut Errors<'_>) -> Option<Header> {
        let mut index = BTreeMap::new();
        let mut ok = true;
        let column_of = |i: usize| fields[i].1;
        for (i, (name, _)) in fields.iter().enumerate() {
            let name = name.as_ref();
            match COLUMNS.iter().find(|c| **c == name) {
                Some(known) => {
                    if index.insert(*known, i).is_some() {
                        errors.push(
                            line,
                            column_of(i),
                            Some(known),
                            "this column is named twice in the header".into(),
                        );
                        ok = false;
                    }
                }
                None => {
                    let hint = COLUMNS
                        .iter()
                        .map(|c| (strsim::jaro_winkler(c, &name.to_lowercase()), c))
                        .filter(|(score, _)| *score > 0.8)
                        .max_by(|a, b| a.0.total_cmp(&b.0))
                        .map(|(_, c)| format!(" (did you mean `{c}`?)"))
                        .unwrap_or_default();
                    errors.push(
                        line,
                        column_of(i),
                        None,
                        format!(
                            "unknown column {name:?}{hint}; the columns are {}",
                            COLUMNS.join(", ")
                        ),
                    );
                    ok = false;
                }
            }
        }
        for required in ["name", "tier"] {
            if !index.contains_key(required) {
                errors.push(
                    line,
                    0,
                    None,
                    format!("the header needs a `{required}` column"),
                );
                ok = false;
            }
        }
        ok.then_some(Header {
            line,
            count: fields.len(),
            index,
        })
    }

    fn row(&self, fields: &[Field<'_>], line: u64, errors: &mut Errors<'_>) -> Option<TenantRow> {
        let before = errors.list.len();
        let field = |column: &'static str| -> Option<(&str, u64)> {
            let i = *self.index.get(column)?;
            fields.get(i).map(|(text, at)| (text.as_ref(), *at))
        };
        let name_in = |column: &'static str, errors: &mut Errors<'_>| -> Option<String> {
            let (value, at) = field(column)?;
            if value.is_empty() {
                return None;
            }
            if is_valid_name(value) {
                Some(value.to_string())
            } else {
                errors.push(
                    line,
                    at,
                    Some(column),
                    format!("expected {NAME_RULE}, found {value:?}"),
                );
                None
            }
        };
        let name = name_in("name", errors);
        let tier = name_in("tier", errors);
        let schedule = name_in("schedule", errors);
        let cell = name_in("cell", errors);
        let region = name_in("region", errors);
        for required in ["name", "tier"] {
            if let Some(("", at)) = field(required) {
                errors.push(
                    line,
                    at,
                    Some(required),
                    format!("expected {NAME_RULE}, found an empty field"),
                );
            }
        }
        let rate = match field("rate") {
            Some((text, at)) if !text.is_empty() => match text.trim().parse::<f64>() {
                Ok(r) if r.is_finite() && r > 0.0 && r <= MAX_RATE.max => Some(r),
                Ok(r) if r.is_finite() && r > MAX_RATE.max => {
                    errors.push(line, at, Some("rate"), MAX_RATE.exceeded(r));
                    None
                }
                _ => {
                    errors.push(
                            line,
                            at,
                            Some("rate"),
                            format!(
                                "expected requests per second, a number above 0 such as 2.5, found {text:?}"
                            ),
                        );
                    None
                }
            },
            _ => None,
        };
        let eu_only = match field("eu_only") {
            None | Some(("", _)) | Some(("false", _)) => false,
            Some(("true", _)) => true,
            Some((other, at)) => {
                errors.push(
                    line,
                    at,
                    Some("eu_only"),
                    format!("expected true or false, found {other:?}"),
                );
                false
            }
        };
        let mix = match field("mix") {
            Some((text, at)) if !text.is_empty() => match parse_mix(text) {
                Ok(mix) => Some(mix),
                Err(message) => {
                    errors.push(line, at, Some("mix"), message);
                    None
                }
            },
            _ => None,
        };
        if errors.list.len() != before {
            return None;
        }
        Some(TenantRow {
            line,
            name: name?,
            tier: tier?,
            rate,
            schedule,
            cell,
            region,
            eu_only,
            mix,
        })
    }
}

/// How far a mix's fractions may sum from 1.
const MIX_TOLERANCE: f64 = 1e-6;

/// Parses a class mix, `api:0.9;report:0.1`.
pub fn parse_mix(text: &str) -> Result<Vec<(String, f64)>, String> {
    const FORM: &str = "a class mix such as \"api:0.9;report:0.1\" (class:fraction pairs \
         separated by `;`, fractions summing to 1)";
    let mut mix: Vec<(String, f64)> = Vec::new();
    for entry in text.split(';') {
        let Some((class, fraction)) = entry.split_once(':') else {
            return Err(format!(
                "expected {FORM}, found {text:?}: {entry:?} has no `:`"
            ));
        };
        let (class, fraction) = (class.trim(), fraction.trim());
        if !is_valid_name(class) {
            return Err(format!(
                "expected {FORM}, found {text:?}: a class is {NAME_RULE}, found {class:?}"
            ));
        }
        if mix.iter().any(|(c, _)| c == class) {
            return Err(format!("class {class:?} appears twice in the mix {text:?}"));
        }
        match fraction.parse::<f64>() {
            Ok(f) if f.is_finite() && f > 0.0 && f <= 1.0 => mix.push((class.to_string(), f)),
            _ => {
                return Err(format!(
                    "expected {FORM}, found {text:?}: the fraction of {class:?} is {fraction:?}, \
                     expected a number above 0 and at most 1"
                ));
            }
        }
    }
    let sum: f64 = mix.iter().map(|(_, f)| f).sum();
    if (sum - 1.0).abs() > MIX_TOLERANCE {
        return Err(format!(
            "the fractions of the mix {text:?} sum to {sum}, expected 1"
        ));
    }
    Ok(mix)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_of(text: &str) -> Vec<String> {
        parse_tenant_table(text.as_bytes(), "tenants.csv")
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_table_parses_with_every_column() {
        let text = "\u{feff}# generated by hand\nname,tier,rate,schedule,cell,region,eu_only,mix\r\n\
                    acme,enterprise,120.5,,cell-a,eu-west,true,api:0.9;report:0.1\r\n\
                    \n\
                    \"beta\",free,,working-day,,,,\n\
                    gamma,free,2,working-day,,,false, api : 0.5 ; report:0.5\n";
        let rows = parse_tenant_table(text.as_bytes(), "t.csv").unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].line, 3);
        assert_eq!(rows[0].rate, Some(120.5));
        assert_eq!(rows[0].cell.as_deref(), Some("cell-a"));
        assert!(rows[0].eu_only);
        assert_eq!(
            rows[0].mix,
            Some(vec![("api".into(), 0.9), ("report".into(), 0.1)])
        );
        assert_eq!(rows[1].name, "beta");
        assert_eq!(rows[1].line, 5);
        assert_eq!(rows[1].rate, None);
        assert_eq!(rows[1].schedule.as_deref(), Some("working-day"));
        assert!(!rows[1].eu_only);
        assert_eq!(rows[2].mix.as_ref().map(Vec::len), Some(2));
        // Columns in any order, optional ones absent.
        let rows = parse_tenant_table(b"rate,name,tier\n3,a,free\n", "t.csv").unwrap();
        assert_eq!((rows[0].name.as_str(), rows[0].rate), ("a", Some(3.0)));
    }

    #[test]
    fn every_error_names_line_column_and_column_name() {
        let text = "name,tier,rate,eu_only,mix\n\
                    acme,free,fast,yes,api:0.5\n\
                    Bad_Name,free,1,,\n\
                    acme,free,1,,\n\
                    ok,free,1\n\
                    ok2,,,,\n\
                    ok3,free,2000000,,api:0.5;api:0.5\n";
        let errors = errors_of(text);
        let expected = [
            "tenants.csv:2:11: column `rate`: expected requests per second",
            "tenants.csv:2:16: column `eu_only`: expected true or false, found \"yes\"",
            "tenants.csv:2:20: column `mix`: the fractions of the mix \"api:0.5\" sum to 0.5",
            "tenants.csv:3:1: column `name`: expected a name of lowercase letters",
            "tenants.csv:4:1: column `name`: tenant \"acme\" is already on line 2",
            "tenants.csv:5: expected 5 fields, as in the header on line 1, found 3",
            "tenants.csv:6:5: column `tier`: expected a name of lowercase letters, digits and dashes (not starting with a dash, at most 64 characters), found an empty field",
            "tenants.csv:7:10: column `rate`: 2000000 is above the limit of 1,000,000",
            "tenants.csv:7:19: column `mix`: class \"api\" appears twice",
        ];
        for (error, want) in errors.iter().zip(expected) {
            assert!(error.starts_with(want), "{error}\n  expected {want}");
        }
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    }

    #[test]
    fn headers_and_files_are_checked() {
        let errors = errors_of("name,tier,rtae\n");
        assert!(
            errors[0].contains("tenants.csv:1:11: unknown column \"rtae\" (did you mean `rate`?)"),
            "{errors:?}"
        );
        let errors = errors_of("name,name,tier,rate\n");
        assert!(
            errors[0].contains("1:6: column `name`: this column is named twice"),
            "{errors:?}"
        );
        assert!(errors_of("# only a comment\n")[0].contains("expected a header line"));
        let errors = errors_of("name,tier,rate\n\"a\nb\",free,1\n");
        assert!(
            errors[0].contains("2:1: this quoted field has no closing quote"),
            "{errors:?}"
        );
        let errors = errors_of("name,tier,rate\n\"a\"x,free,1\nb,fr\"ee,1\n");
        assert!(
            errors[0]
                .contains("2:4: expected a comma or the end of the line after a closing quote"),
            "{errors:?}"
        );
        assert!(
            errors[1].contains("3:5: a quote may only start a field"),
            "{errors:?}"
        );
        let bad_utf8 = b"name,tier,rate\nab\xff,free,1\n";
        let errors = parse_tenant_table(bad_utf8, "t.csv").unwrap_err();
        assert_eq!((errors[0].line, errors[0].column), (2, 3));
        let long = format!("name,tier,rate\n{},free,1\n", "a".repeat(5_000));
        let errors = errors_of(&long);
        assert!(
            errors[0]
                .contains("tenants.csv:2: a line of 5007 bytes is above the limit of 4,096 bytes")
                && errors[0].contains("MAX_LINE_BYTES"),
            "{errors:?}"
        );
    }

    #[test]
    fn errors_stop_at_the_diagnostic_limit() {
        let mut text = String::from("name,tier,rate\n");
        for i in 0..150 {
            text.push_str(&format!("t{i},free,-1\n"));
        }
        let errors = errors_of(&text);
        assert_eq!(errors.len(), MAX_DIAGNOSTICS + 1);
        assert!(
            errors
                .last()
                .unwrap()
                .contains("stopped after the first 100 errors"),
            "{errors:?}"
        );
    }

    #[test]
    fn digests_are_sha256() {
        // FIPS 180-2's example: SHA-256("abc").
        assert_eq!(
            table_digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
