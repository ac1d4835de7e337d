//! A child process (node, and the browser it may launch) run to its end within a time limit:
//! its own process group, killed whole if the test ends early; stdin fed and stdout/stderr
//! drained on their own threads, so a stuck or chatty child never blocks the test on a pipe.

#![allow(dead_code, clippy::expect_used, clippy::missing_panics_doc)]

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The child's process group, killed if it is still running when dropped.
struct Group(Child);

impl Drop for Group {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0.id())])
                .status();
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// What the child left.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

/// Runs `command` with `input` on its stdin (none: stdin closed) and waits for its end,
/// panicking with `what` if that takes longer than `limit`.
pub fn run(mut command: Command, input: Option<String>, limit: Duration, what: &str) -> Finished {
    command
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = Group(command.spawn().expect("start the child process"));
    let feeder = child.0.stdin.take().map(|mut stdin| {
        let input = input.unwrap_or_default();
        thread::spawn(move || stdin.write_all(input.as_bytes()))
    });
    let stdout = drain(child.0.stdout.take().expect("stdout"));
    let stderr = drain(child.0.stderr.take().expect("stderr"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the child") {
            break status;
        }
        assert!(
            started.elapsed() < limit,
            "{what} did not finish in {limit:?}"
        );
        thread::sleep(Duration::from_millis(20));
    };
    if let Some(feeder) = feeder {
        feeder
            .join()
            .expect("the feeder thread")
            .expect("write the child's input");
    }
    Finished {
        status,
        stdout: stdout.join().expect("the stdout thread"),
        stderr: stderr.join().expect("the stderr thread"),
    }
}
