//! Hostile environments: what the README promises about files, pipes and signals holds.
//! Inputs are regular files only (a FIFO or a device never blocks or fills memory) and capped;
//! a closed or full standard output never panics; nothing is written through a link or over a
//! special file; strings read from report.json and sweep.json are printed escaped; a folder is
//! the tool's own only if it holds what the tool wrote; a failed write leaves the previous
//! run's files whole; SIGTERM on a sweep keeps the finished seeds; the README's own-file list
//! is the code's.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use crate::common::{code, root, simulate, simulate_in, text};

const HOT: &str = "scenarios/hot-tenant.toml";
const SHORT: &str = "simulation.duration=\"40s\"";

/// Waits for `child`, killing it and failing the test after `limit` (a deadline against a
/// hang, not a performance assertion); returns its output.
#[allow(clippy::disallowed_methods)] // ok: a test's watchdog reads the wall clock
fn finish_within(mut child: Child, limit: Duration, what: &str) -> Output {
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        pipe.map(|mut p| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = p.read_to_end(&mut bytes);
                bytes
            })
        })
    };
    let stdout = collect(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = collect(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.map(|h| h.join().expect("reader")).unwrap_or_default()
    };
    Output {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    }
}

fn spawn(args: &[&str], dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns")
}

pub(crate) fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(status.success(), "mkfifo {}", path.display());
}

fn is_fifo(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn fifos_and_devices_are_refused_and_nothing_blocks() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("scenario.toml");
    mkfifo(&fifo);
    let folder = dir.path().join("folder");
    std::fs::create_dir(&folder).expect("mkdir");
    std::fs::copy(root().join(HOT), folder.join("a.toml")).expect("copy");
    mkfifo(&folder.join("b.toml"));
    let fifo_text = fifo.display().to_string();
    let folder_text = folder.display().to_string();
    let out = dir.path().join("out").display().to_string();
    let hot = root().join(HOT).display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        vec![&fifo_text, "--out", &out],
        vec!["validate", &fifo_text],
        vec!["validate", &folder_text],
        vec!["check", &folder_text, "--set", SHORT],
        vec!["replay", &fifo_text],
        vec!["merge", &fifo_text, "--out", &out],
        vec!["replay", "/dev/zero"],
        vec!["merge", "/dev/zero", "--out", &out],
        vec!["validate", "/dev/zero"],
        vec![
            &hot, "--set", SHORT, "--out", &out, "--quiet", "--trace", &fifo_text,
        ],
    ];
    for args in cases {
        let output = finish_within(
            spawn(&args, &root()),
            Duration::from_secs(60),
            &args.join(" "),
        );
        assert_eq!(code(&output), 2, "{args:?}: {}", text(&output));
        // `check` reports each file on its line (stdout), the others on stderr.
        assert!(
            text(&output).contains("not a regular file"),
            "{args:?}: {}",
            text(&output)
        );
    }
    assert!(is_fifo(&fifo), "the FIFO is left as it was");
}

#[test]
fn input_files_have_a_size_cap_named_in_the_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Sparse: gigabytes on paper, nothing on disk. Read whole, they took that much memory.
    let sparse = |name: &str, bytes: u64| {
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .and_then(|f| f.set_len(bytes))
            .expect("sparse file");
        path.display().to_string()
    };
    let report = sparse("report.json", 2 << 30);
    let sweep = sparse("sweep.json", 5 << 30);
    let out = dir.path().join("out").display().to_string();
    for (args, limit) in [
        (vec!["replay", report.as_str()], "(MAX_REPORT_BYTES)"),
        (
            vec!["merge", sweep.as_str(), "--out", &out],
            "(MAX_SWEEP_BYTES)",
        ),
    ] {
        let output = finish_within(
            spawn(&args, &root()),
            Duration::from_secs(60),
            &args.join(" "),
        );
        assert_eq!(code(&output), 2, "{args:?}: {}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(limit) && stderr.contains("too large"),
            "{args:?}: {stderr}"
        );
    }
}

/// The command's exit code with an ordinary standard output.
fn plain_code(args: &[&str]) -> i32 {
    code(&simulate(args))
}

#[test]
fn a_closed_or_full_standard_output_never_panics() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out").display().to_string();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = 1\n").expect("write");
    let bad = bad.display().to_string();
    let commands: Vec<Vec<&str>> = vec![
        vec![HOT, "--set", SHORT, "--out", &out],
        vec!["validate", "scenarios/"],
        vec!["schema"],
        vec!["schema", "--markdown"],
        vec!["check", HOT, "--set", SHORT],
        vec!["--help"],
        vec!["validate", &bad],
    ];
    for args in &commands {
        let expected = plain_code(args);
        // A reader that went away (`| head`): quiet, and the command's own exit code.
        let mut child = Command::new(env!("CARGO_BIN_EXE_simulate"))
            .args(args)
            .current_dir(root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        drop(child.stdout.take());
        let output = finish_within(child, Duration::from_secs(120), "closed stdout");
        assert_eq!(
            code(&output),
            expected,
            "{args:?} | (closed): {}",
            text(&output)
        );
        assert!(
            !String::from_utf8_lossy(&output.stderr).contains("panicked"),
            "{args:?}: {}",
            text(&output)
        );
        // A full disk: exit 2 with a message, unless the command printed nothing.
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let child = Command::new(env!("CARGO_BIN_EXE_simulate"))
            .args(args)
            .current_dir(root())
            .stdout(Stdio::from(full))
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        let output = finish_within(child, Duration::from_secs(120), "stdout on /dev/full");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let printed = !simulate(args).stdout.is_empty();
        if printed {
            assert_eq!(code(&output), 2, "{args:?} > /dev/full: {stderr}");
            assert!(
                stderr.contains("cannot write to standard output"),
                "{args:?}: {stderr}"
            );
        }
        // Errors printed to a closed standard error: the exit code still says it.
        let mut child = Command::new(env!("CARGO_BIN_EXE_simulate"))
            .args(args)
            .current_dir(root())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns");
        drop(child.stderr.take());
        let output = finish_within(child, Duration::from_secs(120), "closed stderr");
        assert_eq!(code(&output), expected, "{args:?} 2>(closed)");
    }
}

#[test]
fn the_cli_prints_only_through_its_non_panicking_macros() {
    // std's print! family panics on a closed pipe; cli/stdio.rs shadows it for every CLI
    // module, which works only if it is declared first, with #[macro_use].
    let cli = root().join("src/cli");
    let module = std::fs::read_to_string(cli.join("mod.rs")).expect("cli/mod.rs");
    let first_mod = module
        .lines()
        .find(|l| l.starts_with("mod ") || l.starts_with("pub mod "))
        .expect("a module");
    assert_eq!(
        first_mod, "mod stdio;",
        "cli/mod.rs must declare `mod stdio;` first"
    );
    assert!(
        module.contains("#[macro_use]\nmod stdio;"),
        "stdio needs #[macro_use]"
    );
    let mut problems = Vec::new();
    for entry in std::fs::read_dir(&cli).expect("src/cli") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n == "stdio.rs") {
            continue;
        }
        let source = std::fs::read_to_string(&path).expect("source");
        for (n, line) in source.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for banned in [
                "std::println!",
                "std::print!",
                "std::eprintln!",
                "std::eprint!",
                "io::stdout()",
                "io::_print",
            ] {
                if code.contains(banned) {
                    problems.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn nothing_is_written_through_a_link_or_over_a_special_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let victim = dir.path().join("victim");
    std::fs::create_dir(&victim).expect("mkdir");
    std::fs::write(victim.join("backlog.svg"), "keep").expect("write");
    let out = dir.path().join("out");
    let out_text = out.display().to_string();
    let run = |extra: &[&str]| {
        let mut args = vec![HOT, "--set", SHORT, "--out", &out_text, "--quiet"];
        args.extend_from_slice(extra);
        simulate(&args)
    };
    assert!(matches!(code(&run(&[])), 0 | 1 | 4));
    // plots/ replaced by a link to someone else's folder: even with --force, nothing is
    // written there, and their backlog.svg is not removed as a stale plot.
    std::fs::remove_dir_all(out.join("plots")).expect("rm plots");
    std::os::unix::fs::symlink(&victim, out.join("plots")).expect("symlink");
    let refused = run(&["--force"]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("symbolic link"));
    let names: Vec<String> = std::fs::read_dir(&victim)
        .expect("victim")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["backlog.svg"]);
    assert_eq!(
        std::fs::read(victim.join("backlog.svg")).expect("kept"),
        b"keep"
    );
    // A file of the run that is a link: not replaced, not followed.
    std::fs::remove_file(out.join("plots")).expect("rm link");
    std::fs::remove_file(out.join("summary.md")).expect("rm");
    std::os::unix::fs::symlink(victim.join("backlog.svg"), out.join("summary.md"))
        .expect("symlink");
    assert_eq!(code(&run(&["--force"])), 2);
    assert!(std::fs::symlink_metadata(out.join("summary.md")).is_ok_and(|m| m.is_symlink()));
    assert_eq!(
        std::fs::read(victim.join("backlog.svg")).expect("kept"),
        b"keep"
    );

    // The default folder reports/<scenario> as a link into a foreign folder.
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("reports")).expect("mkdir");
    std::os::unix::fs::symlink(&victim, work.join("reports/hot-tenant")).expect("symlink");
    let hot = root().join(HOT).display().to_string();
    let refused = simulate_in(&work, &[&hot, "--set", SHORT, "--quiet"]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert_eq!(std::fs::read_dir(&victim).expect("victim").count(), 1);

    // --out FILE over a link, a FIFO, a device: refused, each left as it was.
    let link = dir.path().join("schema.json");
    std::os::unix::fs::symlink(dir.path().join("elsewhere.json"), &link).expect("symlink");
    let fifo = dir.path().join("fifo.json");
    mkfifo(&fifo);
    for target in [&link, &fifo] {
        let target_text = target.display().to_string();
        let output = finish_within(
            spawn(&["schema", "--out", &target_text], &root()),
            Duration::from_secs(30),
            "schema --out",
        );
        assert_eq!(code(&output), 2, "{target_text}: {}", text(&output));
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("not a regular file"),
            "{}",
            text(&output)
        );
    }
    assert!(std::fs::symlink_metadata(&link).is_ok_and(|m| m.is_symlink()));
    assert!(!dir.path().join("elsewhere.json").exists());
    assert!(is_fifo(&fifo));
    // A trace through a link is refused too.
    let refused = simulate(&[
        HOT,
        "--set",
        SHORT,
        "--out",
        &out_text,
        "--force",
        "--quiet",
        "--trace",
        &link.display().to_string(),
    ]);
    assert_eq!(code(&refused), 2, "{}", text(&refused));
    assert!(!dir.path().join("elsewhere.json").exists());
}

/// Whether `bytes` hold a control character other than a line break or a tab.
fn has_control(bytes: &[u8]) -> bool {
    String::from_utf8_lossy(bytes)
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

#[test]
fn strings_from_report_and_sweep_files_are_printed_escaped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let run_dir = dir.path().join("run");
    let output = simulate(&[
        HOT,
        "--set",
        SHORT,
        "--out",
        &run_dir.display().to_string(),
        "--quiet",
    ]);
    assert!(matches!(code(&output), 0 | 1 | 4), "{}", text(&output));
    let escape = "\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m";
    let file = run_dir.join("report.json");
    let mut report: Json =
        serde_json::from_slice(&std::fs::read(&file).expect("report")).expect("json");
    report["scenario"] = Json::from(format!("hot{escape}"));
    report["version"] = Json::from(format!("9{escape}"));
    std::fs::write(&file, serde_json::to_string_pretty(&report).expect("json")).expect("write");
    let output = simulate(&["replay", &file.display().to_string()]);
    assert_eq!(code(&output), 3, "{}", text(&output));
    assert!(
        !has_control(&output.stdout) && !has_control(&output.stderr),
        "{:?}",
        text(&output)
    );
    // Not a report: serde quotes the offending string back in its message.
    std::fs::write(&file, r#"{"seed": "\u001b]0;pwned\u0007\u001b[2J"}"#).expect("write");
    let output = simulate(&["replay", &file.display().to_string()]);
    assert_eq!(code(&output), 2);
    assert!(!has_control(&output.stderr), "{:?}", text(&output));

    // A forged sweep.json: every string the merge prints.
    let shard = dir.path().join("shard");
    let output = simulate(&[
        "sweep",
        HOT,
        "--seeds",
        "1..3",
        "--shard",
        "0/1",
        "--set",
        SHORT,
        "--out",
        &shard.display().to_string(),
        "--quiet",
    ]);
    assert!(matches!(code(&output), 0 | 1 | 4), "{}", text(&output));
    let file = shard.join("sweep.json");
    let mut sweep: Json =
        serde_json::from_slice(&std::fs::read(&file).expect("sweep")).expect("json");
    sweep["scenario_file"] = Json::from(format!("x{escape}.toml"));
    sweep["seed_range"] = Json::from("1..3");
    for run in sweep["runs"].as_array_mut().expect("runs") {
        run["verdict"] = Json::from("error");
        run["error"] = Json::from(format!("boom{escape}"));
        run["failed_slos"] = Json::from(vec![format!("slo{escape}")]);
    }
    std::fs::write(&file, serde_json::to_string_pretty(&sweep).expect("json")).expect("write");
    let merged = dir.path().join("merged").display().to_string();
    let output = simulate(&["merge", &shard.display().to_string(), "--out", &merged]);
    assert!(
        !has_control(&output.stdout) && !has_control(&output.stderr),
        "{:?}",
        text(&output)
    );
}

#[test]
fn a_folder_is_the_tools_own_only_with_what_the_tool_wrote() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("explore");
    std::fs::create_dir(&out).expect("mkdir");
    // Someone's own seed-7.toml: the folder is not the tool's, and explore refuses it.
    std::fs::write(out.join("seed-7.toml"), "# my notes\n").expect("write");
    let output = simulate(&[
        "explore",
        "scenarios/cell-outage.toml",
        "--seeds",
        "7..8",
        "--set",
        "simulation.duration=\"120s\"",
        "--out",
        &out.display().to_string(),
        "--quiet",
    ]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("seed-7.toml"));
    assert_eq!(
        std::fs::read(out.join("seed-7.toml")).expect("kept"),
        b"# my notes\n"
    );
    // One that explore wrote (it carries the line explore writes for its seed) is the tool's.
    let mine = std::fs::read_to_string(root().join("scenarios/cell-outage.toml")).expect("read")
        + "\n# Faults drawn by `simulate explore` for seed 7.\n";
    std::fs::write(out.join("seed-7.toml"), mine).expect("write");
    let run_out = out.display().to_string();
    let output = simulate(&[HOT, "--set", SHORT, "--out", &run_out, "--quiet"]);
    assert!(matches!(code(&output), 0 | 1 | 4), "{}", text(&output));
}

/// The list, in docs/commands.md, of the files that make a folder the tool's own.
fn readme_own_files() -> Vec<String> {
    let readme =
        std::fs::read_to_string(root().join("docs/commands.md")).expect("docs/commands.md");
    let start = readme
        .find("`--out DIR` must be a new or empty folder, or one that holds only files tenantsim writes")
        .expect("docs/commands.md states the own files");
    let sentence = &readme[start..];
    let end = sentence.find("): that is how").expect("end of the list");
    sentence[..end]
        .split('`')
        .skip(3)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn the_readme_lists_exactly_the_files_that_make_a_folder_the_tools_own() {
    let listed = readme_own_files();
    for expected in [
        "report.json",
        "summary.md",
        "junit.xml",
        "index.html",
        "compare.md",
        "sweep.json",
        "explore.json",
        "plots/*.svg",
        "seed-N.toml",
    ] {
        assert!(
            listed.iter().any(|l| l == expected),
            "{expected} not in {listed:?}"
        );
    }
    // Every listed plain file makes a folder the tool's own: --out accepts it without --force.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    std::fs::create_dir_all(out.join("plots")).expect("mkdir");
    for name in listed
        .iter()
        .filter(|n| !n.contains('*') && !n.contains('/') && !n.contains('N'))
    {
        std::fs::write(out.join(name), "x").expect("write");
    }
    std::fs::write(out.join("plots/latency.svg"), "x").expect("write");
    std::fs::write(out.join(".report.json.tmp-1"), "x").expect("write");
    let output = simulate(&[
        HOT,
        "--set",
        SHORT,
        "--out",
        &out.display().to_string(),
        "--quiet",
    ]);
    assert!(
        matches!(code(&output), 0 | 1 | 4),
        "{listed:?}: {}",
        text(&output)
    );
    // And a name it does not list is someone else's.
    std::fs::write(out.join("notes.md"), "x").expect("write");
    let output = simulate(&[HOT, "--set", SHORT, "--out", &out.display().to_string()]);
    assert_eq!(code(&output), 2, "{}", text(&output));
}

#[test]
fn a_failed_write_leaves_the_previous_runs_files_whole_and_no_temporaries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out");
    let out_text = out.display().to_string();
    let first = simulate(&[
        HOT, "--set", SHORT, "--seed", "1", "--out", &out_text, "--quiet",
    ]);
    assert!(matches!(code(&first), 0 | 1 | 4), "{}", text(&first));
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files = Vec::new();
        for sub in [dir.to_path_buf(), dir.join("plots")] {
            for entry in std::fs::read_dir(&sub).expect("folder") {
                let path = entry.expect("entry").path();
                if path.is_file() {
                    files.push((
                        path.display().to_string(),
                        std::fs::read(&path).expect("read"),
                    ));
                }
            }
        }
        files.sort();
        files
    };
    let before = snapshot(&out);
    // The second run (another seed) may write files up to some 50 KB: report.json fits,
    // index.html does not (a full disk, without filling one). SIGXFSZ ignored, so the write
    // fails with EFBIG instead of killing the process.
    let script = format!(
        "trap '' XFSZ; ulimit -f 100; exec \"$0\" {HOT} --set '{SHORT}' --seed 2 --out \"$1\" --quiet"
    );
    let output = Command::new("sh")
        .args(["-c", &script, env!("CARGO_BIN_EXE_simulate"), &out_text])
        .current_dir(root())
        .output()
        .expect("sh runs");
    assert_eq!(code(&output), 2, "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot write"));
    assert_eq!(
        snapshot(&out),
        before,
        "the first run's files, all of them, as they were"
    );
    let leftovers: Vec<String> = std::fs::read_dir(&out)
        .expect("folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The sweep scenario of `hostile.rs`: seeds that each take a moment.
const SWEEPABLE: &str = r#"name = "sweepable"
[simulation]
duration = "60s"
[[tiers]]
name = "t"
rate = 100
[[cells]]
name = "c"
api = { workers = 4, service_time = { dist = "constant", value = "1ms" } }
[[tenants]]
name = "a"
tier = "t"
arrival = { rate = 20 }
[[slo]]
name = "fast"
expect = ["p99 < 1s"]
min_samples = 1
"#;

#[test]
fn sigterm_on_a_sweep_keeps_the_finished_runs() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("temp dir");
    let scenario = dir.path().join("sweepable.toml");
    std::fs::write(&scenario, SWEEPABLE).expect("write");
    let out = dir.path().join("sweep");
    let mut child = Command::new(env!("CARGO_BIN_EXE_simulate"))
        .args([
            "sweep",
            &scenario.display().to_string(),
            "--seeds",
            "1..1000001",
            "--allow-long",
            "--out",
            &out.display().to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawns");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = std::io::BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        if line.expect("utf-8").contains(" seeds, ") {
            break;
        }
    }
    let drain = std::thread::spawn(move || lines.map_while(Result::ok).count());
    std::thread::sleep(Duration::from_millis(1_500));
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let output = finish_within(child, Duration::from_secs(60), "a sweep after SIGTERM");
    let _ = drain.join();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    let sweep: Json =
        serde_json::from_slice(&std::fs::read(out.join("sweep.json")).expect("sweep.json"))
            .expect("complete JSON");
    assert_eq!(sweep["interrupted"], Json::from(true));
    assert!(sweep["runs"].as_array().is_some_and(|r| !r.is_empty()));
}

#[test]
fn the_last_seed_is_a_valid_seed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = simulate(&[
        "sweep",
        HOT,
        "--seeds",
        "18446744073709551614..=18446744073709551615",
        "--set",
        SHORT,
        "--out",
        &dir.path().join("s").display().to_string(),
        "--quiet",
    ]);
    assert!(matches!(code(&output), 0 | 1 | 4), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("2 seeds"),
        "{}",
        text(&output)
    );
}

/// A folder to write into that is a device or a file (or lies under one) is named as such,
/// not reported as "File exists" (what creating it fails with): `bench scale
/// --write-scenarios` refuses it before anything runs, and every atomic write (here `schema
/// --out`) says which part is not a folder.
#[test]
fn writing_into_something_that_is_not_a_folder_says_which_part_it_is() {
    for (dir, expected) in [
        (
            "/dev/full",
            "error: --write-scenarios /dev/full: it exists and is a character device, not a \
             folder",
        ),
        (
            "/dev/full/scenarios",
            "error: --write-scenarios /dev/full/scenarios: /dev/full is a character device, \
             not a folder",
        ),
        (
            "README.md",
            "error: --write-scenarios README.md: it exists and is a regular file, not a folder",
        ),
    ] {
        let output = simulate(&["bench", "scale", "--write-scenarios", dir]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(code(&output), 2, "{dir}: {}", text(&output));
        assert!(output.stdout.is_empty(), "{dir}: {}", text(&output));
        assert!(stderr.contains(expected), "{dir}: {}", text(&output));
    }
    let output = simulate(&["schema", "--out", "/dev/full/schema.json"]);
    assert_eq!(code(&output), 2, "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "error: cannot write /dev/full/schema.json: /dev/full is a character device, not a \
             folder"
        ) && !stderr.contains("File exists"),
        "{}",
        text(&output)
    );
}
