//! `[replay]`: a request log replayed as arrivals. The loader reads the whole log once through
//! the caller's file access (streaming: one line at a time), checks every record (order,
//! names, classes, loop period), takes its digest and counts it, and adds the tenants it names
//! that the scenario does not declare when `unknown_tier` says what they are; the run reads it
//! again as it goes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, Read};

use sha2::{Digest, Sha256};

use super::tables::{file_access, lookup};
use super::{
    Ctx, Expansion, TenantContext, read_duration, read_positive, read_string, read_table, resolve,
};
use crate::model::config::{Arrival, Tenant, TenantGroup};
use crate::model::replay::{LogFormat, LogReader, ReplayLog, ReplayTiming};
use crate::scenario::inputs::{InputFile, digest_text};
use crate::scenario::limits::{MAX_LOG_BYTES, MAX_LOG_RECORDS, MAX_REPLAY_SPEEDUP, MAX_TENANTS};
use crate::scenario::spec;
use crate::scenario::tree::Node;
use crate::time::SimDuration;

/// The name of the group of tenants a log names that the scenario does not declare.
pub(super) const UNKNOWN_GROUP: &str = "replayed";

/// A reader that hashes what its user consumes.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: BufRead> Read for Hashing<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(out)?;
        self.hasher.update(&out[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Hashing<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        // The buffer holds at least `amount` bytes (the caller saw them): no I/O happens here.
        if let Ok(buffer) = self.inner.fill_buf() {
            let taken = amount.min(buffer.len());
            self.hasher.update(&buffer[..taken]);
            self.bytes += taken as u64;
        }
        self.inner.consume(amount);
    }
}

/// What the pre-scan found.
struct Scan {
    records: u64,
    span: SimDuration,
    /// Tenants the log names that the scenario does not declare, in order of first mention.
    unknown: Vec<String>,
}

/// Reads `[replay]` (`Some(None)` without one; `None` after reporting errors).
pub(super) fn read_replay(
    ctx: &mut Ctx<'_>,
    node: Option<&Node>,
    out: &mut Expansion<'_>,
    tc: &TenantContext<'_>,
    tenants_complete: bool,
) -> Option<Option<ReplayLog>> {
    let Some(node) = node else {
        return Some(None);
    };
    let mut obj = read_table(ctx, node, "replay", "a [replay] table", &spec::REPLAY)?;
    let log_node = obj.required(ctx, "log", "the path of a request log (.csv or .jsonl)");
    let path = log_node.and_then(|n| {
        read_string(
            ctx,
            n,
            "replay.log",
            "the path of a request log, relative to the scenario, such as \"incident.csv\"",
        )
    });
    let speedup = obj.or(ctx, "speedup", 1.0, |c, n, k| {
        read_positive(c, n, k, &MAX_REPLAY_SPEEDUP, "a speed-up factor such as 10")
    });
    let offset = obj.or(ctx, "offset", SimDuration::ZERO, read_duration);
    let loop_every = obj.or(ctx, "loop", None, |c, n, k| {
        super::read_positive_duration(c, n, k).map(Some)
    });
    let unknown_tier = obj.or(ctx, "unknown_tier", None, |c, n, k| {
        resolve(c, tc.tier_names, n, k, "tier").map(Some)
    });
    obj.finish(ctx);
    let (Some(path), Some(speedup), Some(offset), Some(loop_every), Some(unknown_tier), Some(n)) =
        (path, speedup, offset, loop_every, unknown_tier, log_node)
    else {
        return None;
    };
    let origin = n.origin.clone();
    let Some(format) = LogFormat::from_path(&path) else {
        ctx.push(
            origin,
            "replay.log",
            format!(
                "cannot tell the format of {path:?} from its name: expected a name ending in .csv (CSV with a header) or .jsonl / .ndjson (JSON Lines)"
            ),
        );
        return None;
    };
    let files = file_access(ctx, &origin, "replay.log", &path)?;
    let timing = ReplayTiming {
        speedup,
        offset,
        loop_every,
    };
    // The template of tenants the log names but the scenario does not: the first declared
    // tenant of the tier (its timeout, retry, queries, mix), with no traffic of its own.
    let template: Option<Tenant> = match unknown_tier {
        None => None,
        Some(tier) => match out.tenants.iter().find(|t| t.tier == tier) {
            Some(t) => Some(t.clone()),
            None => {
                ctx.push(
                    origin,
                    "replay.unknown_tier",
                    format!(
                        "unknown tenants of the log would copy the settings of the first [[tenants]] entry of tier {:?}, but none has that tier; declare one (it may send nothing of its own: leave out `arrival`)",
                        tc.tiers[tier].name
                    ),
                );
                return None;
            }
        },
    };
    if !tenants_complete {
        // The scan checks every record's tenant against the declared ones: with tenants that
        // failed to load, it would only repeat their errors as unknown tenants.
        return None;
    }
    let start = ctx.start;
    let digest;
    let scan = {
        let source = match files.0.open(&path, &MAX_LOG_BYTES) {
            Ok(source) => source,
            Err(message) => {
                ctx.push(origin, "replay.log", message);
                return None;
            }
        };
        let mut hashing = Hashing {
            inner: source,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let scanned = scan(
            &mut hashing,
            format,
            start,
            &timing,
            out,
            tc,
            template.as_ref(),
        );
        match scanned {
            Ok(scan) => {
                digest = digest_text(&hashing.hasher.finalize());
                ctx.inputs.push(InputFile {
                    key: "replay.log".into(),
                    path: path.clone(),
                    digest: digest.clone(),
                    bytes: hashing.bytes,
                });
                scan
            }
            Err((location, key, message)) => {
                ctx.push_located(
                    &origin,
                    crate::scenario::Diagnostic {
                        location: format!("{}:{location}", ctx.beside(&path)),
                        key: format!("replay.log.{key}"),
                        message,
                    },
                );
                return None;
            }
        }
    };
    if !scan.unknown.is_empty() {
        let Some(template) = template else {
            return None; // reported by the scan
        };
        if out.targets.contains_key(UNKNOWN_GROUP) {
            ctx.push(
                origin,
                "replay.unknown_tier",
                format!(
                    "the log's undeclared tenants form the group {UNKNOWN_GROUP:?}, but a tenant or group of that name exists; rename it"
                ),
            );
            return None;
        }
        if (out.tenants.len() + scan.unknown.len()) as u64 > MAX_TENANTS.max_int() {
            ctx.push(
                origin,
                "replay.unknown_tier",
                format!(
                    "the log adds {} tenants: {}",
                    scan.unknown.len(),
                    MAX_TENANTS.exceeded(out.tenants.len() + scan.unknown.len())
                ),
            );
            return None;
        }
        let group = out.groups.len();
        let first = out.tenants.len();
        for name in scan.unknown {
            out.targets
                .insert(name.clone(), Some(vec![out.tenants.len()]));
            out.tenants.push(Tenant {
                name,
                group,
                cell: 0,
                pinned: false,
                arrival: Arrival::NONE,
                schedule: None,
                sized: false,
                ..template.clone()
            });
        }
        out.targets.insert(
            UNKNOWN_GROUP.to_string(),
            Some((first..out.tenants.len()).collect()),
        );
        out.groups.push(TenantGroup {
            name: UNKNOWN_GROUP.to_string(),
            tenants: first..out.tenants.len(),
        });
    }
    Some(Some(ReplayLog {
        path: path.clone(),
        format,
        start,
        timing,
        open: std::sync::Arc::new(move || {
            files
                .0
                .open(&path, &MAX_LOG_BYTES)
                .map_err(|e| format!("cannot open the replayed log again: {e}"))
        }),
        records: scan.records,
        span: scan.span,
        digest,
    }))
}

/// Reads the whole log: every record checked, tenants resolved; the first problem as
/// (`line:column`, field, message).
fn scan(
    source: &mut impl BufRead,
    format: LogFormat,
    start: Option<crate::clock::ClockInstant>,
    timing: &ReplayTiming,
    out: &Expansion<'_>,
    tc: &TenantContext<'_>,
    template: Option<&Tenant>,
) -> Result<Scan, (String, &'static str, String)> {
    let declared: BTreeMap<&str, usize> = out
        .tenants
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    // The undeclared tenants, for membership, and in order of first mention, for the group.
    let mut unknown: BTreeSet<String> = BTreeSet::new();
    let mut unknown_order: Vec<String> = Vec::new();
    let mut reader = LogReader::new(source, format, start);
    let mut records = 0u64;
    let mut span = SimDuration::ZERO;
    loop {
        let record = match reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => break,
            Err(e) => {
                let location = match e.column {
                    0 => e.line.to_string(),
                    c => format!("{}:{c}", e.line),
                };
                return Err((location, e.field.unwrap_or("line"), e.message));
            }
        };
        records += 1;
        if records > MAX_LOG_RECORDS.max_int() {
            return Err((
                record.line.to_string(),
                "line",
                format!("the log is too long: {}", MAX_LOG_RECORDS.exceeded(records)),
            ));
        }
        span = record.at;
        if let Some(every) = timing.loop_every
            && record.at >= every
        {
            return Err((
                format!("{}:1", record.line),
                "timestamp",
                format!(
                    "a looping replay's records must come before its loop period (`replay.loop` = {every}); this one is at {}",
                    record.at
                ),
            ));
        }
        let line = record.line;
        let tenant: &Tenant = match (declared.get(record.tenant), template) {
            (Some(&t), _) => &out.tenants[t],
            (None, Some(template)) => {
                if !unknown.contains(record.tenant) {
                    if unknown.len() as u64 >= MAX_TENANTS.max_int() {
                        return Err((
                            line.to_string(),
                            "tenant",
                            format!(
                                "the log names too many tenants: {}",
                                MAX_TENANTS.exceeded(unknown.len() + 1)
                            ),
                        ));
                    }
                    unknown.insert(record.tenant.to_string());
                    unknown_order.push(record.tenant.to_string());
                }
                template
            }
            (None, None) => {
                return Err((
                    line.to_string(),
                    "tenant",
                    format!(
                        "tenant {:?} is not in the scenario (this is its first line in the log); declare it in [[tenants]], or set `[replay] unknown_tier` to give the log's undeclared tenants a tier",
                        record.tenant
                    ),
                ));
            }
        };
        if let Some(class) = record.class {
            // A class whose own errors were reported already is not checked again.
            let Some(index) = lookup(tc.class_names, class, "class")
                .map_err(|message| (line.to_string(), "class", message))?
            else {
                continue;
            };
            let in_mix = tenant
                .mix
                .as_deref()
                .is_some_and(|mix| mix.iter().any(|s| s.class as usize == index));
            if !in_mix {
                return Err((
                    line.to_string(),
                    "class",
                    format!(
                        "tenant {:?} sends class {class:?}, which is not in its `requests` mix (a replayed request uses the pools and bulkheads its class has in the tenant's cell; add the class to the tenant's mix, with any share)",
                        record.tenant
                    ),
                ));
            }
        }
    }
    // A log without a record replays nothing: every objective would be inconclusive, and the
    // run would say nothing about the incident the user meant to replay.
    if records == 0 {
        return Err((
            "1".to_string(),
            "line",
            "the log has no records (a replay needs at least one request; a header line or \
             comments alone replay nothing)"
                .to_string(),
        ));
    }
    Ok(Scan {
        records,
        span,
        unknown: unknown_order,
    })
}
