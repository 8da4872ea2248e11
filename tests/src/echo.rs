//! A responder for the lab's Service tests, run in a lab pod as `multinet-e2e e2e-echo`: no
//! multinet command serves plain UDP (the coordinator's QUIC endpoint needs a run and its
//! PKI), so the test binary has this one hidden command, and only the test binary: `multinet`
//! itself does not. It answers every UDP datagram and every TCP line with its pod's name
//! (`HOSTNAME`, which the lab's kubelet sets) and what it got, so a test can tell which pod
//! behind a Service answered.
//!
//! `multinet-e2e e2e-echo --udp PORT --tcp PORT` listens on `0.0.0.0` until it is killed.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, UdpSocket};
use std::process::ExitCode;

/// The hidden command's name (the first argument).
pub const COMMAND: &str = "e2e-echo";

/// The answer of pod `pod` to `request`: `<pod> <request>`.
pub fn answer(pod: &str, request: &str) -> String {
    format!("{pod} {request}")
}

/// Runs the responder with the arguments after the command's name.
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    let (mut udp, mut tcp) = (None, None);
    let mut args = args.into_iter();
    while let Some(flag) = args.next() {
        let port = args.next().and_then(|p| p.parse::<u16>().ok());
        match (flag.as_str(), port) {
            ("--udp", Some(p)) => udp = Some(p),
            ("--tcp", Some(p)) => tcp = Some(p),
            _ => {
                eprintln!("usage: {COMMAND} --udp PORT --tcp PORT");
                return ExitCode::from(22);
            }
        }
    }
    let (Some(udp), Some(tcp)) = (udp, tcp) else {
        eprintln!("usage: {COMMAND} --udp PORT --tcp PORT");
        return ExitCode::from(22);
    };
    let pod = std::env::var("HOSTNAME").unwrap_or_default();
    let socket = match UdpSocket::bind(("0.0.0.0", udp)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{COMMAND}: UDP port {udp}: {e}");
            return ExitCode::from(1);
        }
    };
    let listener = match TcpListener::bind(("0.0.0.0", tcp)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{COMMAND}: TCP port {tcp}: {e}");
            return ExitCode::from(1);
        }
    };
    println!("{pod} answering on UDP {udp} and TCP {tcp}");
    let udp_pod = pod.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let request = String::from_utf8_lossy(&buf[..n]);
            let _ = socket.send_to(answer(&udp_pod, &request).as_bytes(), from);
        }
    });
    for stream in listener.incoming().flatten() {
        let pod = pod.clone();
        std::thread::spawn(move || {
            let Ok(mut writer) = stream.try_clone() else {
                return;
            };
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if writeln!(writer, "{}", answer(&pod, &line)).is_err() {
                    return;
                }
            }
        });
    }
    ExitCode::SUCCESS
}
