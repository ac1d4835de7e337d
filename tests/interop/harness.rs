//! Peer plumbing for the interop tests: finding the peers, running peer servers and clients,
//! socat pty pairs, and raw request/response exchanges built from the crate's sans-IO pieces.
//!
//! Every wait is bounded; every child process is killed when its guard drops; all traffic goes to
//! 127.0.0.1 or a pty.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use modbus_stack::frame::rtu::{self, Config, Decoder, Mode};
use modbus_stack::frame::{Status, tcp};
use modbus_stack::pdu::{Request, Response};
use modbus_stack::time::Instant as MbInstant;

/// How long a peer server may take to print `ready` (Python start-up on a loaded 2-core box).
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a peer client script may run.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(90);
/// How long we wait for one response from a peer server.
pub(crate) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// RTU unit id the peer servers answer on the pty.
pub(crate) const RTU_UNIT: u8 = 17;

/// The two peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// libmodbus (Debian `libmodbus-dev`) through `tests/interop/peers/libmodbus_peer.c`.
    Libmodbus,
    /// pymodbus (`PyPI`, pinned) through `tests/interop/peers/pymodbus_peer.py`.
    Pymodbus,
}

impl Peer {
    pub(crate) const ALL: [Self; 2] = [Self::Libmodbus, Self::Pymodbus];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Libmodbus => "libmodbus",
            Self::Pymodbus => "pymodbus",
        }
    }

    /// The command that runs this peer (without its mode arguments), or why it is missing.
    fn command(self) -> Result<Command, String> {
        let target = target_dir();
        match self {
            Self::Libmodbus => {
                let bin = target.join("interop/libmodbus_peer");
                if bin.is_file() {
                    Ok(Command::new(bin))
                } else {
                    Err(format!("{} not built", bin.display()))
                }
            }
            Self::Pymodbus => {
                let python = target.join("interop-venv/bin/python");
                if !python.is_file() {
                    return Err(format!("{} missing", python.display()));
                }
                let script = manifest_dir().join("tests/interop/peers/pymodbus_peer.py");
                let mut command = Command::new(python);
                command.arg(script);
                Ok(command)
            }
        }
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The cargo target directory: `target/<profile>/deps/<test binary>` three levels up, so it is
/// right whether or not `CARGO_TARGET_DIR` is set at run time. `setup.sh` builds there.
fn target_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("MODBUS_INTEROP_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| manifest_dir().join("target"))
}

fn required() -> bool {
    std::env::var("MODBUS_INTEROP_REQUIRED").is_ok_and(|v| v == "1")
}

/// Reports a missing prerequisite: a failure under `MODBUS_INTEROP_REQUIRED=1`, else a skip line.
fn missing(test: &str, what: &str) {
    assert!(
        !required(),
        "{test}: {what} (MODBUS_INTEROP_REQUIRED=1; run `bash tests/interop/setup.sh`)"
    );
    // Straight to the process's stderr: the test harness captures `eprintln!` of passing tests,
    // and a skip nobody sees looks like a pass.
    let line = format!("SKIP {test}: {what}; run `bash tests/interop/setup.sh` to enable\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// True when every peer in `peers` (and socat, when `pty`) is available; otherwise prints a skip
/// line (or fails under `MODBUS_INTEROP_REQUIRED=1`) and returns false.
pub(crate) fn available(test: &str, peers: &[Peer], pty: bool) -> bool {
    for peer in peers {
        if let Err(why) = peer.command() {
            missing(test, &format!("{} peer: {why}", peer.name()));
            return false;
        }
    }
    if pty && !socat_available() {
        missing(test, "socat not found");
        return false;
    }
    true
}

fn socat_available() -> bool {
    Command::new("socat")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Lines of a child's stdout, read on a thread so waits can be bounded.
fn line_channel(stdout: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running peer server; killed on drop (stdin EOF first, then SIGKILL).
pub(crate) struct PeerServer {
    child: Child,
    stdin: Option<ChildStdin>,
    /// `127.0.0.1:PORT` for TCP servers.
    pub(crate) addr: Option<String>,
}

impl PeerServer {
    /// Starts `peer server-tcp PORT` on a free port and waits for `ready`.
    pub(crate) fn tcp(peer: Peer) -> Self {
        let mut last = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            match Self::spawn(peer, &["server-tcp".into(), port.to_string()]) {
                Ok(mut server) => {
                    server.addr = Some(format!("127.0.0.1:{port}"));
                    return server;
                }
                // The port may have been taken between our probe and the peer's bind: retry.
                Err(why) => last = why,
            }
        }
        panic!("{} TCP server did not start: {last}", peer.name());
    }

    /// Starts `peer server-rtu DEVICE 17` and waits for `ready`.
    pub(crate) fn rtu(peer: Peer, device: &Path) -> Self {
        let args = [
            "server-rtu".into(),
            device.display().to_string(),
            RTU_UNIT.to_string(),
        ];
        Self::spawn(peer, &args)
            .unwrap_or_else(|why| panic!("{} RTU server did not start: {why}", peer.name()))
    }

    fn spawn(peer: Peer, args: &[String]) -> Result<Self, String> {
        let mut command = peer.command()?;
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let stdin = child.stdin.take();
        let lines = line_channel(child.stdout.take().expect("piped stdout"));
        let mut server = Self {
            child,
            stdin,
            addr: None,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.trim() == "ready" => return Ok(server),
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => return Err("no `ready` in time".into()),
                Err(RecvTimeoutError::Disconnected) => {
                    let status = server.child.wait().ok();
                    return Err(format!("exited before `ready`: {status:?}"));
                }
            }
        }
    }

    pub(crate) fn addr(&self) -> &str {
        self.addr.as_deref().expect("a TCP server")
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        drop(self.stdin.take()); // EOF: the peer exits by itself
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// A socat pty pair `a` <-> `b` in a fresh temporary directory; socat is killed on drop.
pub(crate) struct PtyPair {
    child: Child,
    dir: PathBuf,
    pub(crate) a: PathBuf,
    pub(crate) b: PathBuf,
}

impl PtyPair {
    pub(crate) fn new() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "modbus-interop-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create pty dir");
        let (a, b) = (dir.join("a"), dir.join("b"));
        let child = Command::new("socat")
            .arg("-d")
            .arg("-d")
            .arg(format!("pty,raw,echo=0,link={}", a.display()))
            .arg(format!("pty,raw,echo=0,link={}", b.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn socat");
        let pair = Self { child, dir, a, b };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !(pair.a.exists() && pair.b.exists()) {
            assert!(Instant::now() < deadline, "socat links did not appear");
            thread::sleep(Duration::from_millis(20));
        }
        pair
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One line of a peer client's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Ok(Vec<u32>),
    Exception(u8),
    Error(String),
    Unsupported,
}

/// The parsed output of a peer client script.
#[derive(Debug, Clone)]
pub(crate) struct Script {
    pub(crate) steps: Vec<(String, Outcome)>,
    pub(crate) done: bool,
    pub(crate) raw: String,
}

impl Script {
    pub(crate) fn get(&self, name: &str) -> &Outcome {
        self.steps
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| panic!("no step {name} in:\n{}", self.raw), |(_, o)| o)
    }

    pub(crate) fn ok(&self, name: &str) -> &[u32] {
        match self.get(name) {
            Outcome::Ok(values) => values,
            other => panic!("step {name}: {other:?}\n{}", self.raw),
        }
    }
}

/// Parses `step NAME ok V...` / `step NAME exception CODE` / `step NAME error TEXT` /
/// `step NAME unsupported` lines and the final `done`.
pub(crate) fn parse_script(out: &str) -> Script {
    let mut steps = Vec::new();
    let mut done = false;
    for line in out.lines() {
        let line = line.trim();
        if line == "done" {
            done = true;
            continue;
        }
        let mut words = line.split_whitespace();
        if words.next() != Some("step") {
            continue;
        }
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            continue;
        };
        let rest: Vec<&str> = words.collect();
        let outcome = match kind {
            "ok" => Outcome::Ok(
                rest.iter()
                    .map(|w| {
                        w.parse()
                            .unwrap_or_else(|_| panic!("bad value in {line:?}"))
                    })
                    .collect(),
            ),
            "exception" => Outcome::Exception(
                rest.first()
                    .and_then(|w| w.parse().ok())
                    .unwrap_or_else(|| panic!("bad exception in {line:?}")),
            ),
            "unsupported" => Outcome::Unsupported,
            _ => Outcome::Error(rest.join(" ")),
        };
        steps.push((name.to_string(), outcome));
    }
    Script {
        steps,
        done,
        raw: out.to_string(),
    }
}

/// Runs a peer client script to completion (bounded) and parses its output.
pub(crate) fn run_client(peer: Peer, args: &[String]) -> Script {
    let mut command = peer.command().expect("peer checked by available()");
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn peer client");
    let lines = line_channel(child.stdout.take().expect("piped stdout"));
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let mut out = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
            }
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    parse_script(&out)
}

/// Runs the peer's client script over TCP against `server`, unit 1.
pub(crate) fn run_client_tcp(peer: Peer, server: &PeerServer) -> Script {
    run_client_at(peer, server.addr())
}

/// Runs the peer's client script over TCP against any server at `addr` (`host:port`), unit 1.
pub(crate) fn run_client_at(peer: Peer, addr: &str) -> Script {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    run_client(
        peer,
        &["client-tcp".into(), host.into(), port.into(), "1".into()],
    )
}

/// Has the peer's client read `hr_count` holding registers at `hr_address` and `coil_count`
/// coils at `coil_address` over TCP from `addr`, unit 1: steps `holding` and `coils`.
pub(crate) fn peer_read_tcp(
    peer: Peer,
    addr: &str,
    (hr_address, hr_count): (u16, u16),
    (coil_address, coil_count): (u16, u16),
) -> Script {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    let args: Vec<String> = vec![
        "client-read-tcp".into(),
        host.into(),
        port.into(),
        "1".into(),
        hr_address.to_string(),
        hr_count.to_string(),
        coil_address.to_string(),
        coil_count.to_string(),
    ];
    run_client(peer, &args)
}

/// Runs the peer's client script over RTU on `device`, unit [`RTU_UNIT`].
pub(crate) fn run_client_rtu(peer: Peer, device: &Path) -> Script {
    let args = [
        "client-rtu".into(),
        device.display().to_string(),
        RTU_UNIT.to_string(),
    ];
    run_client(peer, &args)
}

// ---- raw exchanges with our sans-IO pieces ---------------------------------------------------

/// Encodes `request` as a PDU.
pub(crate) fn encode_pdu(request: &Request<'_>) -> Vec<u8> {
    let mut pdu = vec![0u8; 253];
    let len = request.encode(&mut pdu).expect("encode request");
    pdu.truncate(len);
    pdu
}

/// Encodes `request` in a Modbus TCP ADU.
pub(crate) fn tcp_adu(transaction_id: u16, unit: u8, request: &Request<'_>) -> Vec<u8> {
    let pdu = encode_pdu(request);
    let mut adu = vec![0u8; tcp::MAX_ADU_LEN];
    let len = tcp::encode(transaction_id, unit, &pdu, &mut adu).expect("encode adu");
    adu.truncate(len);
    adu
}

/// A TCP connection to a peer server with a read deadline per response.
pub(crate) struct RawTcp {
    stream: TcpStream,
    buf: Vec<u8>,
    next_tid: u16,
}

impl RawTcp {
    pub(crate) fn connect(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).expect("connect to peer server");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: Vec::new(),
            next_tid: 1,
        }
    }

    /// Sends `request` and returns the response PDU bytes (checking the transaction id).
    pub(crate) fn transact(&mut self, unit: u8, request: &Request<'_>) -> Option<Vec<u8>> {
        let tid = self.next_tid;
        self.next_tid = self.next_tid.wrapping_add(1);
        let adu = tcp_adu(tid, unit, request);
        self.stream.write_all(&adu).ok()?;
        let (resp_tid, pdu) = self.read_adu(RESPONSE_TIMEOUT)?;
        assert_eq!(resp_tid, tid, "transaction id echoed");
        Some(pdu)
    }

    /// Reads one ADU (bounded); returns its transaction id and PDU, or `None` on timeout/close.
    pub(crate) fn read_adu(&mut self, timeout: Duration) -> Option<(u16, Vec<u8>)> {
        let deadline = Instant::now() + timeout;
        loop {
            match tcp::parse(&self.buf) {
                Status::Complete { frame, consumed } => {
                    let out = (frame.transaction_id(), frame.pdu().to_vec());
                    self.buf.drain(..consumed);
                    return Some(out);
                }
                Status::Invalid { error, .. } => panic!("peer sent an invalid ADU: {error}"),
                Status::Incomplete(_) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).ok()?;
            let mut chunk = [0u8; 512];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Decodes a response PDU against its request; panics with context on failure.
pub(crate) fn decode<'a>(pdu: &'a [u8], request: &Request<'_>) -> Response<'a> {
    Response::decode(pdu, request)
        .unwrap_or_else(|e| panic!("cannot decode {pdu:02X?} for {request:?}: {e}"))
}

/// Our side of a pty as a client port: writes directly, reads on a thread (std has no read
/// timeout on a tty file) so that every wait is bounded.
pub(crate) struct RtuPort {
    file: std::fs::File,
    chunks: Receiver<Vec<u8>>,
    decoder: Decoder,
}

impl RtuPort {
    pub(crate) fn open(path: &Path) -> Self {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .expect("open pty");
        let mut reader = file.try_clone().expect("clone pty handle");
        let (tx, chunks) = mpsc::channel();
        thread::spawn(move || {
            let mut buf = [0u8; 256];
            // Ends when the pty goes away (socat killed): read fails or returns 0.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                if tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Self {
            file,
            chunks,
            // Untimed: the length oracle and the CRC cut the stream (a pty has no line timing).
            decoder: Decoder::new(Config::untimed(Mode::Responses)),
        }
    }

    /// Sends `request` to `unit` and returns (unit, response PDU), or `None` after the deadline.
    pub(crate) fn transact(&mut self, unit: u8, request: &Request<'_>) -> Option<(u8, Vec<u8>)> {
        let pdu = encode_pdu(request);
        let mut adu = vec![0u8; rtu::MAX_ADU_LEN];
        let len = rtu::encode(unit, &pdu, &mut adu).expect("encode rtu");
        self.decoder.reset();
        while self.chunks.try_recv().is_ok() {} // drop stale bytes
        self.file.write_all(&adu[..len]).ok()?;
        let deadline = Instant::now() + RESPONSE_TIMEOUT;
        let mut pending: Vec<u8> = Vec::new();
        loop {
            while !pending.is_empty() {
                let taken = self.decoder.push(MbInstant::now(), &pending);
                pending.drain(..taken);
                if taken == 0 {
                    break;
                }
            }
            if let Some(frame) = self.decoder.poll_frame() {
                match frame {
                    Ok(adu) => return Some((adu.unit_id(), adu.pdu().to_vec())),
                    Err(error) => eprintln!("rtu: framing error {error}, resyncing"),
                }
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.chunks.recv_timeout(left) {
                Ok(chunk) => pending.extend_from_slice(&chunk),
                Err(_) => return None,
            }
        }
    }
}
