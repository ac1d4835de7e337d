//! The `harvest` binary as an operator runs it: without a file it runs the embedded demo,
//! prints its URL and serves the three demo devices; with a file it polls the devices the
//! file names; it stops cleanly (exit 0) after `--run-for`, on SIGTERM and on Ctrl-C
//! (SIGINT); `--check` passes the shipped files and fails a broken one with every
//! `file:line:col: field: message`; an address in use and a bad `--run-for` are refused.
//!
//! Every child is killed by a guard if its test fails; every wait is bounded.

mod support;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use modbus_stack::server::tcp::{Config, TcpServer};
use modbus_stack::sim;
use serde_json::{Value, json};

/// Longest wait for the binary to start or to stop on its own. The machine is shared with
/// other builds, so it is generous; every wait ends as soon as its condition holds.
const PATIENCE: Duration = Duration::from_secs(30);
/// How soon a signalled service must have exited.
const PROMPT: Duration = Duration::from_secs(10);

fn harvest() -> Command {
    Command::new(env!("CARGO_BIN_EXE_harvest"))
}

/// A fresh directory for one test's files.
fn temp_dir(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("binary")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the temporary directory");
    dir
}

/// A running `harvest`, killed and reaped when dropped (a failed test included). Its log goes
/// to a file, so a full pipe can never stall it; its stdout is drained by a thread.
struct Running {
    child: Child,
    log: PathBuf,
    stdout: Receiver<String>,
    started: Instant,
}

impl Running {
    fn spawn(test: &str, args: &[&str]) -> Self {
        let log = temp_dir(test).join("stderr.log");
        let mut child = harvest()
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).expect("create the log file"))
            .spawn()
            .expect("start harvest");
        let started = Instant::now();
        let stdout = child.stdout.take().expect("piped stdout");
        let (lines, receiver) = mpsc::channel();
        // Ends at the child's exit (end of file), or when the test is gone.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        Self {
            child,
            log,
            stdout: receiver,
            started,
        }
    }

    /// The URL from the one line the service prints on stdout.
    fn url(&self) -> String {
        let line = self.stdout.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!("no URL line within {PATIENCE:?}; log:\n{}", self.log_text())
        });
        line.strip_prefix("harvest: open ")
            .unwrap_or_else(|| panic!("not the URL line: {line:?}"))
            .to_owned()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{name}");
    }

    /// Waits at most `limit` for the child to exit.
    fn exit_within(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("poll the child") {
                return status;
            }
            assert!(
                start.elapsed() < limit,
                "still running after {limit:?}; log:\n{}",
                self.log_text()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .proxy(None)
        .build()
        .into()
}

fn get_json(url: &str) -> (u16, Value) {
    let mut response = agent().get(url).call().expect("GET");
    let status = response.status().as_u16();
    let body = response.body_mut().read_json().expect("a JSON body");
    (status, body)
}

fn device_names(url: &str) -> Vec<String> {
    let (status, body) = get_json(&format!("{url}api/devices"));
    assert_eq!(status, 200, "{body}");
    let mut names: Vec<String> = body["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["name"].as_str().expect("a name").to_owned())
        .collect();
    names.sort();
    names
}

/// Waits until `condition` holds for `GET url`.
fn wait_for(url: &str, what: &str, condition: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, body) = get_json(url);
        if status == 200 && condition(&body) {
            return body;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "timed out waiting for {what}: {body}"
        );
        thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts nothing accepts connections at the URL's address any more.
fn assert_closed(url: &str) {
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("the URL has an address");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err(),
        "{addr} still accepts connections after the exit"
    );
}

fn run(args: &[&str]) -> Output {
    // `output` waits for the exit: these runs stop on their own (check, refusals).
    let mut child = harvest()
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start harvest");
    let start = Instant::now();
    while child.try_wait().expect("poll").is_none() {
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("harvest {args:?} did not exit within {PATIENCE:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("collect the output")
}

#[test]
fn on_the_demo_it_prints_its_url_serves_and_stops_after_run_for() {
    let mut harvest = Running::spawn("run_for", &["--listen", "127.0.0.1:0", "--run-for", "3"]);
    let url = harvest.url();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    assert_ne!(url, "http://127.0.0.1:0/", "the port actually bound");
    assert_eq!(device_names(&url), ["meter-1", "meter-2", "plc"]);
    let status = harvest.exit_within(PATIENCE);
    assert!(status.success(), "{status}; log:\n{}", harvest.log_text());
    assert!(
        harvest.started.elapsed() >= Duration::from_secs(3),
        "it ran for the time it was given"
    );
    let log = harvest.log_text();
    assert!(log.contains("running on embedded simulators"), "{log}");
    assert!(log.contains(&format!("serving {url}")), "{log}");
    assert!(log.contains("stopping (--run-for elapsed)"), "{log}");
    assert!(log.trim_end().ends_with("stopped"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert_closed(&url);
}

#[test]
fn sigterm_stops_it_cleanly_and_promptly() {
    let mut harvest = Running::spawn("sigterm", &["--listen", "127.0.0.1:0"]);
    let url = harvest.url();
    // Running for real: the PLC and both meters polled and good.
    for device in ["plc", "meter-1", "meter-2"] {
        wait_for(
            &format!("{url}api/devices/{device}/data"),
            &format!("{device} polled"),
            |data| {
                data["points"]
                    .as_array()
                    .is_some_and(|points| points.iter().all(|p| p["quality"] == "good"))
            },
        );
    }
    let sent = Instant::now();
    harvest.signal("TERM");
    let status = harvest.exit_within(PROMPT);
    assert!(status.success(), "{status}; log:\n{}", harvest.log_text());
    assert!(sent.elapsed() < PROMPT);
    let log = harvest.log_text();
    assert!(log.contains("stopping (SIGTERM)"), "{log}");
    assert!(log.trim_end().ends_with("stopped"), "{log}");
    assert_closed(&url);
}

#[test]
fn ctrl_c_stops_it_cleanly() {
    let mut harvest = Running::spawn("sigint", &["--listen", "127.0.0.1:0"]);
    let url = harvest.url();
    assert_eq!(device_names(&url).len(), 3);
    harvest.signal("INT");
    let status = harvest.exit_within(PROMPT);
    assert!(status.success(), "{status}; log:\n{}", harvest.log_text());
    let log = harvest.log_text();
    assert!(log.contains("stopping (Ctrl-C)"), "{log}");
    assert!(log.trim_end().ends_with("stopped"), "{log}");
}

#[test]
fn a_signal_right_after_the_url_still_stops_it_cleanly() {
    // The earliest moment a script can act: the URL line. The signal must be handled by then.
    for attempt in 0..5 {
        let mut harvest = Running::spawn("early_signal", &["--listen", "127.0.0.1:0"]);
        let _ = harvest.url();
        harvest.signal("TERM");
        let status = harvest.exit_within(PROMPT);
        assert!(
            status.success(),
            "attempt {attempt}: {status}; log:\n{}",
            harvest.log_text()
        );
    }
}

#[test]
fn a_configuration_file_is_polled_served_and_written() {
    let store = sim::store();
    store.write_holding_registers(0, &[321]).expect("in range");
    let server = TcpServer::bind("127.0.0.1:0", Config::tcp())
        .and_then(|server| server.spawn(store.clone()))
        .expect("start the simulator");
    // The file's own listen address is taken: `--listen` must win over it.
    let occupied = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dir = temp_dir("with_config");
    let file = dir.join("boiler.toml");
    std::fs::write(
        &file,
        format!(
            r#"[service]
listen = "{occupied}"

[[devices]]
name = "boiler"
connection = "tcp"
address = "127.0.0.1"
port = {port}
unit_id = 1
poll_interval = "200ms"

  [[devices.points]]
  name = "setpoint"
  register = 40001
  type = "u16"
  access = "read-write"

  [[devices.points]]
  name = "ir100"
  register = 30101
  type = "u16"
"#,
            occupied = occupied.local_addr().unwrap(),
            port = server.local_addr().port()
        ),
    )
    .expect("write the file");
    let mut harvest = Running::spawn(
        "with_config_run",
        &[
            "--config",
            file.to_str().expect("a UTF-8 path"),
            "--listen",
            "127.0.0.1:0",
        ],
    );
    let url = harvest.url();
    assert_eq!(device_names(&url), ["boiler"]);
    let data = wait_for(&format!("{url}api/devices/boiler/data"), "a poll", |d| {
        d["points"][0]["quality"] == "good"
    });
    assert_eq!(data["points"][0]["value"], 321, "{data}");
    assert_eq!(data["points"][1]["value"], 100, "{data}");
    let mut response = agent()
        .post(format!("{url}api/devices/boiler/write"))
        .send_json(json!({ "setpoint": 654 }))
        .expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.body_mut().read_json().expect("JSON");
    assert_eq!(body["written"]["setpoint"]["value"], 654);
    assert_eq!(store.holding_registers(0, 1).unwrap(), [654]);

    harvest.signal("TERM");
    let status = harvest.exit_within(PROMPT);
    assert!(status.success(), "{status}; log:\n{}", harvest.log_text());
    drop(occupied);
    server.shutdown().expect("stop the simulator");
}

#[test]
fn without_listen_the_files_address_is_served() {
    let free = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let dir = temp_dir("file_listen");
    let file = dir.join("plant.toml");
    // The device is not there: the service starts anyway and reports it.
    std::fs::write(
        &file,
        format!(
            "[service]\nlisten = \"{free}\"\n\n[[devices]]\nname = \"away\"\nconnection = \"tcp\"\naddress = \"127.0.0.1\"\nport = 9\nunit_id = 1\n\n  [[devices.points]]\n  name = \"p\"\n  register = 40001\n  type = \"u16\"\n"
        ),
    )
    .expect("write the file");
    let mut harvest = Running::spawn(
        "file_listen_run",
        &[
            "--config",
            file.to_str().expect("a UTF-8 path"),
            "--run-for",
            "1.5",
        ],
    );
    assert_eq!(harvest.url(), format!("http://{free}/"));
    let status = harvest.exit_within(PATIENCE);
    assert!(status.success(), "{status}; log:\n{}", harvest.log_text());
}

#[test]
fn check_passes_the_shipped_files() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for (file, devices) in [("plant.toml", 4), ("simulator.toml", 2)] {
        let path = dir.join(file);
        let output = run(&["--check", "--config", path.to_str().expect("UTF-8")]);
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{file}: {log}");
        assert!(
            log.contains(&format!("configuration is valid: {devices} devices")),
            "{file}: {log}"
        );
        assert!(output.stdout.is_empty(), "nothing was served");
    }
}

#[test]
fn check_without_a_file_is_refused_before_anything_starts() {
    let output = run(&["--check"]);
    let log = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{log}");
    assert!(log.contains("--config"), "{log}");
    assert!(!log.contains("simulators"), "the demo was started: {log}");
    assert!(output.stdout.is_empty());
}

#[test]
fn check_fails_a_broken_file_with_every_error_and_its_place() {
    let broken = temp_dir("check_broken").join("broken.toml");
    std::fs::write(
        &broken,
        "[[devices]]\nname = \"m\"\nconnection = \"tcp\"\naddress = \"127.0.0.1\"\nunit_id = 1\npoll_interval = \"often\"\n\n  [[devices.points]]\n  name = \"p\"\n  register = 40001\n  type = \"f33\"\n",
    )
    .expect("write the file");
    let output = run(&["--check", "--config", broken.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(2));
    let log = String::from_utf8_lossy(&output.stderr);
    let file = broken.display();
    for place in [
        format!("{file}:6:17: devices[0].poll_interval: \"often\" is not a duration"),
        format!(
            "{file}:11:10: devices[0].points[0].type: unknown data type \"f33\", expected one of"
        ),
        format!("2 error(s) in {file}; nothing was started"),
    ] {
        assert!(log.contains(&place), "{place:?} missing from:\n{log}");
    }
    assert!(output.stdout.is_empty(), "no URL: nothing was served");

    // The same file without --check: refused the same way, nothing started.
    let output = run(&[
        "--config",
        broken.to_str().expect("UTF-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());

    let absent = broken.with_file_name("absent.toml");
    let output = run(&["--check", "--config", absent.to_str().expect("UTF-8")]);
    assert_eq!(output.status.code(), Some(2));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains(&format!("{}:1:1: cannot read the file", absent.display())),
        "{log}"
    );
}

#[test]
fn an_address_in_use_and_a_bad_run_for_are_refused() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().unwrap().to_string();
    let output = run(&["--listen", &addr, "--run-for", "5"]);
    assert_eq!(output.status.code(), Some(1));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(
        log.contains(&format!("cannot start the service on {addr}")),
        "{log}"
    );
    assert!(output.stdout.is_empty());
    drop(taken);

    for bad in ["--run-for=-1", "--run-for=NaN", "--run-for=soon"] {
        let output = run(&["--listen", "127.0.0.1:0", bad]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        let log = String::from_utf8_lossy(&output.stderr);
        assert!(log.contains("--run-for"), "{bad}: {log}");
        assert!(output.stdout.is_empty(), "{bad}: nothing was served");
    }
}

/// Killed outright (SIGKILL), the service's last will tells subscribers it is gone; the next
/// start publishes online again under a new run, from the same queue directory.
#[test]
fn a_killed_service_leaves_its_last_will_and_the_next_run_goes_on() {
    let store = sim::store();
    let server = TcpServer::bind("127.0.0.1:0", Config::tcp())
        .and_then(|server| server.spawn(store.clone()))
        .expect("start the simulator");
    let mut broker = support::mqtt::Mosquitto::start();
    let subscriber = support::mqtt::Subscriber::start(broker.port, "check-will", "bin/#");
    let dir = temp_dir("last_will");
    let file = dir.join("fleet.toml");
    std::fs::write(
        &file,
        format!(
            r#"[mqtt]
broker = "mqtt://127.0.0.1:{broker}"
client_id = "harvest-bin"
topic_prefix = "bin"
queue_dir = "queue"

[[devices]]
name = "boiler"
connection = "tcp"
address = "127.0.0.1"
port = {port}
unit_id = 1
poll_interval = "100ms"

  [[devices.points]]
  name = "setpoint"
  register = 40001
  type = "u16"
"#,
            broker = broker.port,
            port = server.local_addr().port()
        ),
    )
    .expect("write the file");
    let config = file.to_string_lossy().into_owned();
    let service_topic = "bin/_service/harvest-bin";
    let state = |m: &support::mqtt::Message| m.json()["state"].as_str().map(str::to_owned);
    for run in 1..=2u64 {
        let mut running = Running::spawn(
            &format!("last_will_{run}"),
            &["--config", &config, "--listen", "127.0.0.1:0"],
        );
        let _ = running.url();
        subscriber.wait_for(PATIENCE, "the service online", |m| {
            m.iter().any(|m| {
                m.topic == service_topic
                    && m.json()["run"] == run
                    && state(m).as_deref() == Some("online")
            })
        });
        subscriber.wait_for(PATIENCE, "samples", |m| {
            m.iter()
                .any(|m| m.topic == "bin/boiler/setpoint" && m.json()["run"] == run)
        });
        running.signal("KILL");
        let _ = running.exit_within(PATIENCE);
        subscriber.wait_for(PATIENCE, "the last will", |m| {
            m.iter()
                .rev()
                .find(|m| m.topic == service_topic)
                .and_then(state)
                .as_deref()
                == Some("offline")
        });
    }
    assert!(dir.join("queue").join("run").exists());
    drop(subscriber);
    broker.stop();
    server.shutdown().expect("stop the simulator");
}

#[test]
fn a_broker_that_refuses_the_password_is_named_in_the_log() {
    let mut broker = support::mqtt::Mosquitto::start_with_password("harvest", "right");
    let dir = temp_dir("refused_password_files");
    let file = dir.join("fleet.toml");
    std::fs::write(
        &file,
        format!(
            r#"[mqtt]
broker = "mqtt://127.0.0.1:{port}"
client_id = "harvest-refused"
username = "harvest"
password = "wrong"
queue_dir = "queue"
reconnect_initial = "100ms"
reconnect_max = "200ms"

[[devices]]
name = "boiler"
connection = "tcp"
address = "127.0.0.1"
port = 1
unit_id = 1

  [[devices.points]]
  name = "setpoint"
  register = 40001
  type = "u16"
"#,
            port = broker.password_port.expect("a password listener")
        ),
    )
    .expect("write the file");
    let config = file.to_string_lossy().into_owned();
    let running = Running::spawn(
        "refused_password",
        &["--config", &config, "--listen", "127.0.0.1:0"],
    );
    let _ = running.url();
    let deadline = Instant::now() + PATIENCE;
    let wanted = "check the user name and password";
    while !running.log_text().contains(wanted) {
        assert!(
            Instant::now() < deadline,
            "no {wanted:?} in the log:\n{}",
            running.log_text()
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert!(running.log_text().contains("refused the connection"));
    drop(running);
    broker.stop();
}
