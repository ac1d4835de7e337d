//! The `harvest` binary as an operator runs it: on its embedded simulators it prints the URL,
//! serves the three demo devices, and stops cleanly after `--run-for` and on SIGTERM;
//! `--check` passes the shipped files and fails a broken one with `file:line:col`.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Kills the service if a test ends early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn harvest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harvest"))
}

/// Starts the service on the demo; returns it and the URL it printed.
fn start(extra: &[&str]) -> (Guard, String) {
    let mut child = Guard(
        harvest()
            .args(["--listen", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line
        .trim()
        .strip_prefix("harvest: open ")
        .unwrap_or_else(|| panic!("no URL line: {line:?}"))
        .to_owned();
    (child, url)
}

/// Waits at most `limit` for the process to exit.
fn wait(child: &mut Guard, limit: Duration) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            return status;
        }
        assert!(started.elapsed() < limit, "still running after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stderr_of(child: &mut Guard) -> String {
    let mut text = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    text
}

fn device_names(url: &str) -> Vec<String> {
    let mut response = ureq::get(&format!("{url}api/devices")).call().unwrap();
    let body: serde_json::Value = response.body_mut().read_json().unwrap();
    let mut names: Vec<String> = body["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn on_the_demo_it_serves_and_stops_after_run_for() {
    let (mut child, url) = start(&["--run-for", "2"]);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert_eq!(device_names(&url), ["meter-1", "meter-2", "plc"]);
    let status = wait(&mut child, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    let log = stderr_of(&mut child);
    assert!(log.contains("stopping (--run-for elapsed)"), "{log}");
    assert!(log.contains("stopped"), "{log}");
}

#[test]
fn sigterm_stops_it_cleanly_and_promptly() {
    let (mut child, url) = start(&[]);
    assert_eq!(device_names(&url).len(), 3);
    let sent = Instant::now();
    let kill = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = wait(&mut child, Duration::from_secs(5));
    assert!(status.success(), "{status}");
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "{:?}",
        sent.elapsed()
    );
    let log = stderr_of(&mut child);
    assert!(log.contains("stopping (SIGTERM)"), "{log}");
}

#[test]
fn check_passes_the_shipped_files_and_names_the_place_of_an_error() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for file in ["plant.toml", "simulator.toml"] {
        let output = harvest()
            .args(["--check", "--config"])
            .arg(dir.join(file))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let broken = Path::new(env!("CARGO_TARGET_TMPDIR")).join("broken.toml");
    std::fs::write(
        &broken,
        "[[devices]]\nname = \"m\"\nconnection = \"tcp\"\naddress = \"127.0.0.1\"\nunit_id = 1\n\n  [[devices.points]]\n  name = \"p\"\n  register = 40001\n  type = \"f33\"\n",
    )
    .unwrap();
    let output = harvest()
        .args(["--check", "--config"])
        .arg(&broken)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let log = String::from_utf8_lossy(&output.stderr);
    let place = format!(
        "{}:10:10: devices[0].points[0].type: unknown data type \"f33\"",
        broken.display()
    );
    assert!(log.contains(&place), "{log}");
    assert!(log.contains("nothing was started"), "{log}");
}
