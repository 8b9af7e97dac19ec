//! Replays every fuzz input kept in the repository (`fuzz/corpus/<target>/` and
//! `fuzz/regressions/<target>/`) through the same drivers the cargo-fuzz targets call, on
//! stable and without libFuzzer, so `cargo test --workspace` (CI) catches regressions. The
//! fuzz crate is outside the workspace; its driver is compiled in here as a module.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/lib.rs"]
mod driver;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// Runs every file of `dir` through `run`; returns how many ran and the failures.
fn replay_dir(dir: &Path, run: fn(&[u8]) -> Result<(), String>) -> (usize, Vec<String>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return (0, Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != ".gitkeep"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for file in &files {
        let bytes = fs::read(file).expect("readable fuzz input");
        let outcome = catch_unwind(AssertUnwindSafe(|| run(&bytes)));
        let problem = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(violation)) => violation,
            Err(panic) => panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "a non-string panic".to_owned()),
        };
        failures.push(format!("{}: {problem}", file.display()));
    }
    (files.len(), failures)
}

fn replay(name: &str) {
    let target = driver::TARGETS
        .iter()
        .find(|t| t.name == name)
        .expect("a known fuzz target");
    // The corpus as the fuzz target ran it.
    let (corpus, mut failures) = replay_dir(&fuzz_dir().join("corpus").join(name), target.run);
    assert!(
        corpus > 0,
        "fuzz/corpus/{name}/ is empty or missing: nothing was replayed"
    );
    // Every crash ever found, without the workarounds: it must pass, unless it is a known
    // open bug, which must still fail the way it did.
    let regressions = fuzz_dir().join("regressions").join(name);
    let (_, faithful) = replay_dir(&regressions, target.run_faithful);
    let known: Vec<_> = driver::KNOWN_BUGS
        .iter()
        .filter(|b| b.target == name)
        .collect();
    for bug in &known {
        let file = regressions.join(bug.file);
        let prefix = format!("{}: ", file.display());
        match faithful.iter().find(|f| f.starts_with(&prefix)) {
            Some(f) => assert!(
                f.contains(bug.symptom),
                "known bug {} fails differently now:\n{f}",
                bug.file
            ),
            None => failures.push(format!(
                "{}: known bug \"{}\" no longer reproduces (fixed?): remove it from \
                 KNOWN_BUGS in fuzz/src/lib.rs, with its workaround",
                file.display(),
                bug.summary
            )),
        }
    }
    failures.extend(faithful.into_iter().filter(|f| {
        !known
            .iter()
            .any(|b| f.starts_with(&format!("{}: ", regressions.join(b.file).display())))
    }));
    // The workarounds must not hide anything else in the regressions either.
    let (_, worked_around) = replay_dir(&regressions, target.run);
    failures.extend(worked_around);
    assert!(
        failures.is_empty(),
        "{} fuzz input(s) fail:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn connection_corpus_and_regressions_replay() {
    replay("connection");
}

#[test]
fn sink_corpus_and_regressions_replay() {
    replay("sink");
}

#[test]
fn config_corpus_and_regressions_replay() {
    replay("config");
}

#[test]
fn tls_corpus_and_regressions_replay() {
    replay("tls");
}

#[test]
fn tls_session_corpus_and_regressions_replay() {
    replay("tls_session");
}

/// Prints the `tls_session` input in `$FUZZ_INPUT` as operations:
/// `FUZZ_INPUT=fuzz/artifacts/tls_session/crash-... cargo test -p sansock-core --test
/// fuzz_corpus show_tls_session_input -- --ignored --nocapture`.
#[test]
#[ignore = "a tool: reads $FUZZ_INPUT"]
fn show_tls_session_input() {
    let path = std::env::var("FUZZ_INPUT").expect("FUZZ_INPUT names an input file");
    let bytes = fs::read(&path).expect("readable input");
    println!("{}", driver::describe_tls_session(&bytes));
    println!(
        "{:?}",
        catch_unwind(AssertUnwindSafe(|| driver::run_tls_session(&bytes)))
    );
}

#[test]
fn every_target_is_replayed() {
    let names: Vec<&str> = driver::TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(
        names,
        ["connection", "sink", "config", "tls", "tls_session"],
        "add a #[test] for every new target"
    );
}
