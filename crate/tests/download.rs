//! Downloads against a real HTTP server on 127.0.0.1 (a thread in this
//! test): a good file, a corrupted one, a 404, a connection cut mid-transfer;
//! and a folder mirror with and without the file. Nothing partial is ever
//! left in the data directory.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;

use nnlab::data::download::{fetch_from, md5_file};
use nnlab::Error;

/// Serves `routes` (path → (status line, declared length, body)) until the test ends.
fn serve(routes: Vec<(&'static str, &'static str, usize, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = [0u8; 4096];
            let n = s.read(&mut buf).unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            let path = req.split_whitespace().nth(1).unwrap_or("/").to_string();
            match routes.iter().find(|r| r.0 == path) {
                Some((_, status, len, body)) => {
                    let head = format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n");
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(body);
                }
                None => {
                    let _ = s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found");
                }
            }
            let _ = s.flush();
            // dropping the stream closes the connection (cutting short bodies)
        }
    });
    format!("http://{addr}")
}

fn md5_of(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x");
    std::fs::write(&p, bytes).unwrap();
    md5_file(&p).unwrap()
}

fn only_file(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).map(|r| r.map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect()).unwrap_or_default()
}

#[test]
fn http_good_corrupt_missing_and_cut() {
    let good: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sum = md5_of(&good);
    let mut bad = good.clone();
    bad[1000] ^= 1;
    let base = serve(vec![
        ("/mnist/good.gz", "200 OK", good.len(), good.clone()),
        ("/mnist/bad.gz", "200 OK", bad.len(), bad),
        ("/mnist/cut.gz", "200 OK", good.len(), good[..50_000].to_vec()),
    ]);
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("mnist");

    // good: in place, same bytes, no temp file
    fetch_from(&format!("{base}/mnist/good.gz"), &dest.join("good.gz"), Some(&sum)).unwrap();
    assert_eq!(std::fs::read(dest.join("good.gz")).unwrap(), good);
    assert_eq!(only_file(&dest), vec!["good.gz"]);

    // corrupted: checksum error naming both sums, nothing left
    let e = fetch_from(&format!("{base}/mnist/bad.gz"), &dest.join("bad.gz"), Some(&sum)).unwrap_err();
    assert!(matches!(e, Error::Checksum { .. }), "{e}");
    assert!(e.to_string().contains(&sum) && e.to_string().contains("bad.gz"), "{e}");
    assert_eq!(only_file(&dest), vec!["good.gz"]);

    // 404: a download error naming the URL and the status
    let e = fetch_from(&format!("{base}/mnist/none.gz"), &dest.join("none.gz"), None).unwrap_err().to_string();
    assert!(e.contains("/mnist/none.gz") && e.contains("404"), "{e}");
    assert_eq!(only_file(&dest), vec!["good.gz"]);

    // cut mid-transfer: an error, no partial file
    let e = fetch_from(&format!("{base}/mnist/cut.gz"), &dest.join("cut.gz"), None).unwrap_err().to_string();
    assert!(e.contains("/mnist/cut.gz"), "{e}");
    assert_eq!(only_file(&dest), vec!["good.gz"]);

    // an existing good file is kept over a failing re-download
    let e = fetch_from(&format!("{base}/mnist/cut.gz"), &dest.join("good.gz"), Some(&sum)).unwrap_err();
    assert!(e.to_string().contains("cut"), "{e}");
    assert_eq!(std::fs::read(dest.join("good.gz")).unwrap(), good);
}

#[test]
fn folder_mirror_with_and_without_the_file() {
    let mirror = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(mirror.path().join("digits")).unwrap();
    std::fs::write(mirror.path().join("digits/a.bin"), b"hello").unwrap();
    let root = tempfile::tempdir().unwrap();
    let src = mirror.path().join("digits/a.bin");
    fetch_from(src.to_str().unwrap(), &root.path().join("digits/a.bin"), Some(&md5_of(b"hello"))).unwrap();
    assert_eq!(std::fs::read(root.path().join("digits/a.bin")).unwrap(), b"hello");
    let missing = mirror.path().join("digits/b.bin");
    let e = fetch_from(missing.to_str().unwrap(), &root.path().join("digits/b.bin"), None).unwrap_err().to_string();
    assert!(e.contains("b.bin") && e.contains("NNLAB_DATA_MIRROR"), "{e}");
    assert_eq!(only_file(&root.path().join("digits")), vec!["a.bin"]);
}
