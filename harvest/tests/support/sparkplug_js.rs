//! Eclipse Tahu's JavaScript Sparkplug library (npm `sparkplug-payload`, pinned in
//! `tests/sparkplug/`) driven through `tests/sparkplug/decode.mjs`: payloads decoded the way a
//! Tahu-based host reads them, and commands encoded the way it writes them.
//!
//! Needs `node` and `npm ci --prefix harvest/tests/sparkplug` (CI installs both). Without them a
//! test fails and says so, unless `MODBUS_SKIP_SPARKPLUG_JS=1` makes it a visible skip.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::node::{self, Finished};

/// The whole node run; it decodes a payload in well under a millisecond.
const LIMIT: Duration = Duration::from_secs(30);

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sparkplug")
}

/// Why Tahu cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some(
            "node not found (apt-get install nodejs npm, then npm ci --prefix harvest/tests/sparkplug)"
                .into(),
        );
    }
    if !dir().join("node_modules/sparkplug-payload").exists() {
        return Some(
            "Tahu's decoder is not installed: run npm ci --prefix harvest/tests/sparkplug".into(),
        );
    }
    None
}

/// `false` when Tahu cannot run and `MODBUS_SKIP_SPARKPLUG_JS=1` says to skip (a visible
/// skip); panics with what to install when it cannot run otherwise.
pub fn available(test: &str) -> bool {
    let Some(why) = missing_prerequisite() else {
        return true;
    };
    if std::env::var("MODBUS_SKIP_SPARKPLUG_JS").is_ok_and(|v| v == "1") {
        // Straight to stderr: the harness hides `eprintln!` of passing tests.
        let line = format!("SKIP {test}: {why}\n");
        let _ = std::io::stderr().write_all(line.as_bytes());
        return false;
    }
    panic!("{why}; or set MODBUS_SKIP_SPARKPLUG_JS=1 to skip this test");
}

/// Lower-case hex, as `decode.mjs` reads and writes bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

/// The bytes of `hex`.
pub fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex from node"))
        .collect()
}

/// Runs `decode.mjs` on `requests` (payload hex, or JSON objects for Tahu to encode) in one node
/// process and returns its answers, one per request; panics on any answer that is an error.
pub fn run(requests: &[String]) -> Vec<Value> {
    let mut command = Command::new("node");
    command.arg(dir().join("decode.mjs")).current_dir(dir());
    let mut input = requests.join("\n");
    input.push('\n');
    let Finished {
        status,
        stdout,
        stderr,
    } = node::run(command, Some(input), LIMIT, "decode.mjs");
    assert!(status.success(), "decode.mjs failed ({status}): {stderr}");
    let answers: Vec<Value> = stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|error| panic!("not JSON ({error}): {line}"))
        })
        .collect();
    assert_eq!(
        answers.len(),
        requests.len(),
        "one answer per request: {stdout}"
    );
    for answer in &answers {
        assert!(answer.get("error").is_none(), "Tahu failed: {answer}");
    }
    answers
}

/// Each payload as Tahu decodes it: `{"tahu": …, "raw": …}` (see `decode.mjs`).
pub fn decode<'a>(payloads: impl IntoIterator<Item = &'a [u8]>) -> Vec<Value> {
    let requests: Vec<String> = payloads.into_iter().map(hex).collect();
    if requests.is_empty() {
        return Vec::new();
    }
    run(&requests)
}

/// Each object (Tahu's payload shape: `{"timestamp", "metrics": [{"name", "type", "value"}]}`)
/// as Tahu's `encodePayload` writes it.
pub fn encode(objects: &[Value]) -> Vec<Vec<u8>> {
    run(&objects.iter().map(Value::to_string).collect::<Vec<_>>())
        .iter()
        .map(|answer| unhex(answer["encoded"].as_str().expect("encoded")))
        .collect()
}
