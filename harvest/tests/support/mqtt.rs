//! A real broker and a real subscriber for the MQTT tests: Debian's `mosquitto`, started on a
//! free 127.0.0.1 port and stopped when dropped, and a rumqttc client that keeps every message.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::missing_panics_doc
)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use modbus_harvest::mqtt::Broker;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};
use serde_json::Value;

/// A mosquitto process of the test's own.
pub struct Mosquitto {
    child: Option<Child>,
    /// Its loopback port, the same across restarts.
    pub port: u16,
    /// A second, TLS listener (see [`Mosquitto::start_with_tls`]).
    pub tls_port: Option<u16>,
    /// A listener that wants a user name and password (see
    /// [`Mosquitto::start_with_password`]).
    pub password_port: Option<u16>,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts a broker on a free port.
    pub fn start() -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        // Started as root, mosquitto drops to its own user, which must be able to save the
        // sessions here.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o777),
        )
        .unwrap();
        let mut broker = Self {
            child: None,
            port,
            tls_port: None,
            password_port: None,
            dir,
        };
        broker.restart();
        broker
    }

    fn binary() -> PathBuf {
        ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
            .unwrap_or_else(|| {
                panic!("mosquitto is not installed: `apt-get install mosquitto` (the MQTT tests start their own broker)")
            })
    }

    /// Starts a broker with a plain listener and a TLS one, whose certificate (for IP
    /// 127.0.0.1) is signed by a CA made here; returns the CA's PEM file.
    pub fn start_with_tls() -> (Self, PathBuf) {
        let mut broker = Self::start();
        broker.stop();
        let dir = broker.dir.path().to_path_buf();
        let openssl = |args: &[&str]| {
            let status = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl (to make the test certificates)");
            assert!(status.success(), "openssl {args:?}");
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        openssl(
            &[
                &["req", "-x509"][..],
                &ec,
                &[
                    "-keyout",
                    "ca.key",
                    "-out",
                    "ca.pem",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=harvest test CA",
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign",
                ],
            ]
            .concat(),
        );
        openssl(
            &[
                &["req"][..],
                &ec,
                &[
                    "-keyout",
                    "server.key",
                    "-out",
                    "server.csr",
                    "-subj",
                    "/CN=127.0.0.1",
                ],
            ]
            .concat(),
        );
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        // Started as root, mosquitto reads them as its own user.
        std::fs::set_permissions(
            dir.join("server.key"),
            std::os::unix::fs::PermissionsExt::from_mode(0o644),
        )
        .unwrap();
        broker.tls_port = Some(free_port());
        broker.restart();
        let tls_port = broker.tls_port.unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", tls_port)).is_err() {
            assert!(Instant::now() < deadline, "no TLS listener on {tls_port}");
            thread::sleep(Duration::from_millis(20));
        }
        (broker, dir.join("ca.pem"))
    }

    /// Starts a broker with its anonymous listener and one that admits only `user` with
    /// `password` (a password file made with `mosquitto_passwd`).
    pub fn start_with_password(user: &str, password: &str) -> Self {
        let mut broker = Self::start();
        broker.stop();
        let file = broker.dir.path().join("passwd");
        let status = Command::new("mosquitto_passwd")
            .args(["-c", "-b"])
            .arg(&file)
            .args([user, password])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("mosquitto_passwd (part of Debian's mosquitto)");
        assert!(status.success(), "mosquitto_passwd");
        // Started as root, mosquitto reads it as its own user.
        std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let port = free_port();
        broker.password_port = Some(port);
        broker.restart();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "no password listener on {port}");
            thread::sleep(Duration::from_millis(20));
        }
        broker
    }

    /// Starts it (again) on the same port, with the persisted sessions.
    pub fn restart(&mut self) {
        assert!(self.child.is_none());
        let config = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "per_listener_settings true\npersistence true\npersistence_location {dir}/\nlog_dest stderr\nlog_type error\nlog_type warning\nmax_queued_messages 0\nlistener {} 127.0.0.1\nallow_anonymous true\n{}{}",
                self.port,
                self.tls_port.map_or(String::new(), |port| format!(
                    "listener {port} 127.0.0.1\nallow_anonymous true\ncafile {dir}/ca.pem\ncertfile {dir}/server.pem\nkeyfile {dir}/server.key\n",
                    dir = self.dir.path().display()
                )),
                self.password_port.map_or(String::new(), |port| format!(
                    "listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {dir}/passwd\n",
                    dir = self.dir.path().display()
                )),
                dir = self.dir.path().display(),
            ),
        )
        .unwrap();
        let child = Command::new(Self::binary())
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.port
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops it the way an operator would (SIGTERM): it saves the persistent sessions.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }

    /// Where it is, for a service's configuration.
    pub fn broker(&self) -> Broker {
        Broker {
            host: "127.0.0.1".into(),
            port: self.port,
            tls: false,
        }
    }
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A message as the subscriber saw it.
#[derive(Debug, Clone)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retained: bool,
    /// As delivered: the lower of the publisher's and the subscription's (1).
    pub qos: QoS,
}

impl Message {
    /// The payload as JSON (`null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or(Value::Null)
    }
}

/// A subscriber with a persistent session (clean session off, QoS 1) that keeps every message.
pub struct Subscriber {
    client: Client,
    seen: Arc<Mutex<Vec<Message>>>,
    thread: Option<JoinHandle<()>>,
}

impl Subscriber {
    /// Connects as `id` and subscribes to `filter`.
    pub fn start(port: u16, id: &str, filter: &str) -> Self {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options
            .set_clean_session(false)
            .set_keep_alive(Duration::from_secs(5))
            .set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut connection) = Client::new(options, 1024);
        client.subscribe(filter, QoS::AtLeastOnce).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (subscribed, ready) = std::sync::mpsc::channel();
        let thread = {
            let seen = Arc::clone(&seen);
            thread::spawn(move || {
                for event in connection.iter() {
                    match event {
                        Ok(Event::Incoming(Packet::Publish(publish))) => {
                            seen.lock().unwrap().push(Message {
                                topic: publish.topic.clone(),
                                payload: publish.payload.to_vec(),
                                retained: publish.retain,
                                qos: publish.qos,
                            });
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            let _ = subscribed.send(());
                        }
                        Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                        Ok(_) => {}
                        // The broker is down: try again shortly (the loop ends at disconnect).
                        Err(_) => thread::sleep(Duration::from_millis(50)),
                    }
                }
            })
        };
        ready.recv_timeout(Duration::from_secs(10)).expect("SUBACK");
        Self {
            client,
            seen,
            thread: Some(thread),
        }
    }

    /// Every message so far.
    pub fn messages(&self) -> Vec<Message> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits (at most `limit`) until `done` holds for the messages so far.
    pub fn wait_for(&self, limit: Duration, what: &str, done: impl Fn(&[Message]) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if done(&self.seen.lock().unwrap()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            thread::sleep(Duration::from_millis(25));
        }
    }

    /// Publishes at QoS 1.
    pub fn publish(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.as_bytes().to_vec())
            .unwrap();
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.client.disconnect();
        if let Some(thread) = self.thread.take() {
            // The iterator ends at the DISCONNECT; a broker already gone ends it with errors.
            let deadline = Instant::now() + Duration::from_secs(3);
            while !thread.is_finished() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}
