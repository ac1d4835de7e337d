//! The store-and-forward queue across real processes: a second process is refused the
//! directory while the first holds it, and a process killed mid-work (no clean close, a
//! stale lock, an unsaved ack) leaves a queue the next process opens with nothing lost.
//!
//! The child processes are this test binary again, running the ignored `child` test.

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use modbus_harvest::mqtt::queue::{FsyncPolicy, Queue, QueueError, QueueOptions};

const MODE: &str = "MQTT_QUEUE_CHILD_MODE";
const DIR: &str = "MQTT_QUEUE_CHILD_DIR";
/// The child's exit code when the directory is locked.
const LOCKED: i32 = 3;
const RECORDS: u64 = 300;

fn options() -> QueueOptions {
    QueueOptions {
        max_bytes: 1 << 20,
        segment_bytes: 4096,
        fsync: FsyncPolicy::Interval(Duration::from_secs(3600)),
    }
}

fn record(seq: u64) -> Vec<u8> {
    format!("sample {seq} ").repeat(5).into_bytes()
}

/// Runs the `child` test in a new process of this binary, bounded at 60 s.
fn run_child(mode: &str, dir: &Path) -> ExitStatus {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--ignored", "--test-threads=1"])
        .env(MODE, mode)
        .env(DIR, dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("the child process did not finish in 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What a child process does, by `MQTT_QUEUE_CHILD_MODE`: `open` exits 0 if it could open
/// the queue and 3 if the directory is locked; `crash` pushes and acks, then aborts without
/// closing anything.
#[test]
#[ignore = "run by the other tests in a child process"]
fn child() {
    let mode = std::env::var(MODE).expect("run by the other tests");
    let dir = std::env::var_os(DIR).expect("run by the other tests");
    match (mode.as_str(), Queue::open(Path::new(&dir), options())) {
        ("open", Ok(_)) => std::process::exit(0),
        ("open", Err(QueueError::Locked { .. })) => std::process::exit(LOCKED),
        ("crash", Ok(mut queue)) => {
            for seq in 0..RECORDS {
                assert_eq!(queue.push(&record(seq)).unwrap(), seq);
            }
            let mut out = Vec::new();
            queue.read(0, 100, usize::MAX, &mut out).unwrap();
            queue.ack_through(99).unwrap();
            // Written to the OS (a process crash cannot lose it); the ack stays unsaved.
            queue.flush().unwrap();
            std::process::abort();
        }
        (mode, result) => panic!("mode {mode}: {result:?}"),
    }
}

#[test]
fn a_second_process_is_refused_while_the_first_holds_the_directory() {
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::open(dir.path(), options()).unwrap();
    assert_eq!(run_child("open", dir.path()).code(), Some(LOCKED));
    drop(queue);
    assert_eq!(run_child("open", dir.path()).code(), Some(0));
}

#[test]
fn a_crashed_process_leaves_every_record_and_a_lock_the_next_one_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let status = run_child("crash", dir.path());
    assert!(!status.success(), "the child aborts");
    assert!(
        dir.path().join("lock").exists(),
        "an abort leaves the lock behind"
    );

    let mut queue = Queue::open(dir.path(), options()).unwrap();
    assert_eq!(queue.corrupt(), 0);
    assert_eq!(queue.next_seq(), RECORDS);
    // The ack was never saved: the acked records of segments not deleted yet come again
    // (duplicates, not losses).
    let resume = queue.first_unacked();
    assert!(resume > 0 && resume < 100, "resumes at {resume}");
    let mut out = Vec::new();
    queue.read(0, usize::MAX, usize::MAX, &mut out).unwrap();
    assert_eq!(out.len() as u64, RECORDS - resume);
    for (seq, (got, bytes)) in (resume..).zip(&out) {
        assert_eq!(*got, seq);
        assert_eq!(*bytes, record(seq));
    }
    assert_eq!(queue.push(b"next").unwrap(), RECORDS);
}
