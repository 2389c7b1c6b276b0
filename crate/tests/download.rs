//! `data::download` against a tiny HTTP server on 127.0.0.1 (std only) and folder mirrors.

use nnlab::data::download::{fetch_from, file_md5, official_size, Mirror};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;

/// A test's result: any error fails the test with its message (`?` instead of `.unwrap()`).
type TestResult = Result<(), Box<dyn std::error::Error>>;

const BODY: &[u8] = b"hello, dataset bytes\n";
// md5 of BODY: printf 'hello, dataset bytes\n' | md5sum
const BODY_MD5: &str = "4c0dc210f9529128169a719184e2f7ab";

/// Serves: /ds/good (BODY), /ds/bad (BODY with one byte changed), /ds/cut
/// (Content-Length 1000, 10 bytes, close), anything else 404.
fn server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut line = String::new();
            let mut r = BufReader::new(s.try_clone().unwrap());
            if r.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).map(|n| n == 0).unwrap_or(true) || h == "\r\n" {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let ok = |len: usize| {
                format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
            };
            let _ = match path.as_str() {
                "/ds/good" => s
                    .write_all(ok(BODY.len()).as_bytes())
                    .and_then(|_| s.write_all(BODY)),
                "/ds/bad" => {
                    let mut b = BODY.to_vec();
                    b[0] = b'j';
                    s.write_all(ok(b.len()).as_bytes())
                        .and_then(|_| s.write_all(&b))
                }
                "/ds/cut" => s
                    .write_all(ok(1000).as_bytes())
                    .and_then(|_| s.write_all(&[1u8; 10])),
                // 20 MB, chunked (no Content-Length), for a 4,542-byte official file
                "/mnist/t10k-labels-idx1-ubyte.gz" => {
                    let chunk = vec![b'x'; 1 << 16];
                    let mut r = s.write_all(
                        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                    );
                    for _ in 0..320 {
                        if r.is_err() {
                            break;
                        }
                        r = s
                            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                            .and_then(|_| s.write_all(&chunk))
                            .and_then(|_| s.write_all(b"\r\n"));
                    }
                    r.and_then(|_| s.write_all(b"0\r\n\r\n"))
                }
                // says 300 MB for the 28,881-byte official file
                "/mnist/train-labels-idx1-ubyte.gz" => s
                    .write_all(ok(300_000_000).as_bytes())
                    .and_then(|_| s.write_all(&[0u8; 1000])),
                _ => s.write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                ),
            };
            let _ = s.flush();
        }
    });
    format!("http://{addr}")
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => vec![],
    }
}

#[test]
fn body_md5_constant_is_right() -> TestResult {
    let d = tempfile::tempdir()?;
    let p = d.path().join("b");
    std::fs::write(&p, BODY)?;
    assert_eq!(file_md5(&p)?, BODY_MD5);
    Ok(())
}

#[test]
fn http_mirror_good_corrupt_404_and_cut() -> TestResult {
    let base = server();
    let mirror = Mirror::Url(base.clone());
    let root = tempfile::tempdir()?;

    let p = fetch_from("ds", "good", Some(BODY_MD5), root.path(), &mirror)?;
    assert_eq!(std::fs::read(&p)?, BODY);
    assert_eq!(p, root.path().join("ds/good"));
    // present and correct: returned without the network
    let p2 = fetch_from(
        "ds",
        "good",
        Some(BODY_MD5),
        root.path(),
        &Mirror::Url("http://127.0.0.1:1".into()),
    )?;
    assert_eq!(p, p2);

    let e = fetch_from("ds", "bad", Some(BODY_MD5), root.path(), &mirror)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("{base}/ds/bad")) && e.contains(&format!("expected {BODY_MD5}")),
        "{e}"
    );
    assert_eq!(
        entries(&root.path().join("ds")),
        vec!["good".to_string()],
        "nothing left of the corrupt file"
    );

    let e = fetch_from("ds", "nothere", None, root.path(), &mirror)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("{base}/ds/nothere")) && e.contains("404"),
        "{e}"
    );
    assert!(
        e.contains("NNLAB_DATA_MIRROR") && e.contains("nnlab data download ds"),
        "{e}"
    );

    let e = fetch_from("ds", "cut", None, root.path(), &mirror)
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("{base}/ds/cut")), "{e}");
    assert_eq!(
        entries(&root.path().join("ds")),
        vec!["good".to_string()],
        "no partial file after a cut"
    );
    Ok(())
}

#[test]
fn folder_mirror_with_and_without_the_file() -> TestResult {
    let mirror = tempfile::tempdir()?;
    std::fs::create_dir_all(mirror.path().join("ds"))?;
    std::fs::write(mirror.path().join("ds/f.bin"), BODY)?;
    let root = tempfile::tempdir()?;
    let m = Mirror::Folder(mirror.path().to_path_buf());
    let p = fetch_from("ds", "f.bin", Some(BODY_MD5), root.path(), &m)?;
    assert_eq!(std::fs::read(p)?, BODY);

    // a corrupt local copy is replaced
    std::fs::write(root.path().join("ds/f.bin"), b"junk")?;
    let p = fetch_from("ds", "f.bin", Some(BODY_MD5), root.path(), &m)?;
    assert_eq!(std::fs::read(p)?, BODY);

    let e = fetch_from("ds", "missing.bin", None, root.path(), &m)
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.bin") && e.contains("not found"), "{e}");
    assert!(
        e.contains("NNLAB_DATA_MIRROR") && e.contains("nnlab data download ds"),
        "{e}"
    );
    let fresh = tempfile::tempdir()?;
    let e = fetch_from("ds", "f.bin", Some("0123"), fresh.path(), &m)
        .unwrap_err()
        .to_string();
    assert!(e.contains("f.bin") && e.contains("expected 0123"), "{e}");
    assert!(
        entries(fresh.path()).is_empty(),
        "nothing left, not even the folder"
    );
    assert_eq!(entries(&root.path().join("ds")), vec!["f.bin".to_string()]);
    Ok(())
}

/// Issue 17: a mirror streaming 20 MB for the 4,542-byte official file is cut
/// as soon as it passes the official size; a Content-Length over it is
/// refused before a byte is written; nothing is left behind.
#[test]
fn http_download_is_capped_at_the_official_size() -> TestResult {
    let base = server();
    let mirror = Mirror::Url(base.clone());
    let root = tempfile::tempdir()?;
    let cap = official_size("mnist", "t10k-labels-idx1-ubyte.gz")
        .ok_or("None from official_size(\"mnist\", \"t10k-labels-idx1-ubyte.gz\")")?;
    let t = std::time::Instant::now();
    let e = fetch_from(
        "mnist",
        "t10k-labels-idx1-ubyte.gz",
        None,
        root.path(),
        &mirror,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("/mnist/t10k-labels-idx1-ubyte.gz")
            && e.contains(&format!("more than {cap} bytes, the official file's size")),
        "{e}"
    );
    assert!(
        t.elapsed().as_secs() < 10,
        "stopped early: {:?}",
        t.elapsed()
    );
    let e = fetch_from(
        "mnist",
        "train-labels-idx1-ubyte.gz",
        None,
        root.path(),
        &mirror,
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("Content-Length 300000000 bytes, expected at most 28881"),
        "{e}"
    );
    assert!(
        entries(root.path()).is_empty(),
        "nothing left: {:?}",
        entries(root.path())
    );
    Ok(())
}

/// Issue 17: `.part-PID` files of processes that no longer run (killed by a
/// signal) are removed by the next download; a running process's is kept.
#[test]
fn stale_part_files_of_dead_processes_are_removed() -> TestResult {
    let mirror = tempfile::tempdir()?;
    std::fs::create_dir_all(mirror.path().join("mnist"))?;
    std::fs::write(mirror.path().join("mnist/t10k-labels-idx1-ubyte.gz"), BODY)?;
    let root = tempfile::tempdir()?;
    let dir = root.path().join("mnist");
    std::fs::create_dir_all(&dir)?;
    let mut dead = std::process::Command::new("true").spawn()?;
    let dead_pid = dead.id();
    dead.wait()?;
    let mut live = std::process::Command::new("sleep").arg("30").spawn()?;
    let stale = dir.join(format!(".t10k-labels-idx1-ubyte.gz.part-{dead_pid}"));
    let running = dir.join(format!(".t10k-labels-idx1-ubyte.gz.part-{}", live.id()));
    let other = dir.join(format!(".train-images-idx3-ubyte.gz.part-{dead_pid}"));
    for p in [&stale, &running, &other] {
        std::fs::write(p, b"half a download")?;
    }
    let m = Mirror::Folder(mirror.path().to_path_buf());
    let p = fetch_from(
        "mnist",
        "t10k-labels-idx1-ubyte.gz",
        Some(BODY_MD5),
        root.path(),
        &m,
    )?;
    assert_eq!(std::fs::read(p)?, BODY);
    assert!(!stale.exists(), "the dead process's part file is removed");
    assert!(running.exists(), "a running process's part file is kept");
    assert!(
        other.exists(),
        "another file's part is not this download's business"
    );
    let _ = live.kill();
    let _ = live.wait();
    Ok(())
}

/// Issue 17: a folder mirror pointing at /dev/zero wrote ≈ 1 GB in 2 s and a
/// FIFO hung: both are refused before they are opened, nothing is written.
#[test]
fn folder_mirror_refuses_devices_and_fifos() -> TestResult {
    let mirror = tempfile::tempdir()?;
    let ds = mirror.path().join("ds");
    std::fs::create_dir_all(&ds)?;
    std::os::unix::fs::symlink("/dev/zero", ds.join("zero.bin"))?;
    let ok = std::process::Command::new("mkfifo")
        .arg(ds.join("pipe.bin"))
        .status()?;
    assert!(ok.success());
    std::fs::create_dir(ds.join("folder.bin"))?;
    let root = tempfile::tempdir()?;
    let m = Mirror::Folder(mirror.path().to_path_buf());
    let t = std::time::Instant::now();
    for (file, kind) in [
        ("zero.bin", "character device"),
        ("pipe.bin", "FIFO"),
        ("folder.bin", "a folder"),
    ] {
        let e = fetch_from("ds", file, None, root.path(), &m)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(file) && e.contains(kind) && e.contains("expected a regular file"),
            "{e}"
        );
    }
    assert!(t.elapsed().as_secs() < 5);
    assert!(
        entries(root.path()).is_empty(),
        "nothing written: {:?}",
        entries(root.path())
    );
    Ok(())
}
