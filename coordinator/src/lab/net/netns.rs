//! Named network namespaces, kept as `ip netns` keeps them (a bind mount of the namespace on
//! a file in `/run/netns`, that directory a shared mount), so `ip netns exec`, the CNI
//! plugins' `CNI_NETNS` and a user's `ip netns list` see them — but made, listed, emptied and
//! removed by this process: two `ip` processes per namespace were most of a pod's placement.
//! Made as iproute2's `netns add` makes them (`ip/ipnetns.c`): the directory made a shared
//! mount once, an empty file, `unshare(CLONE_NEWNET)` on a thread and a bind mount of that
//! thread's namespace on the file.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::link::Links;
use super::{Error, NETNS_DIR, Result, namespace_error};

fn nix_error(what: String) -> impl FnOnce(nix::Error) -> Error {
    move |e| namespace_error(what)(std::io::Error::from(e))
}

/// Makes `/run/netns` a shared mount (as `ip netns add` does), so a namespace mounted in it
/// shows in every mount namespace that shares it.
fn shared_netns_dir() -> Result<()> {
    std::fs::create_dir_all(NETNS_DIR).map_err(namespace_error(format!("creating {NETNS_DIR}")))?;
    let share = || {
        mount(
            None::<&str>,
            NETNS_DIR,
            None::<&str>,
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match share() {
        Ok(()) => Ok(()),
        // Not a mount point yet: bind it on itself first.
        Err(nix::Error::EINVAL) => {
            mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                None::<&str>,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(nix_error(format!("bind-mounting {NETNS_DIR} on itself")))?;
            share().map_err(nix_error(format!("making {NETNS_DIR} a shared mount")))
        }
        Err(e) => Err(nix_error(format!("making {NETNS_DIR} a shared mount"))(e)),
    }
}

/// Creates namespace `name` with its loopback up.
///
/// # Errors
///
/// The namespace exists already, or the kernel refused a step; nothing of it stays then.
pub fn netns_add(name: &str) -> Result<()> {
    netns_add_with(name, &[])
}

/// [`netns_add`], with `sysctls` (`(key under /proc/sys, value)`) written in the new
/// namespace before anything else is made in it (a `…/default/…` key then holds for every
/// interface that comes later).
///
/// # Errors
///
/// As [`netns_add`].
pub fn netns_add_with(name: &str, sysctls: &[(&str, &str)]) -> Result<()> {
    shared_netns_dir()?;
    let path = format!("{NETNS_DIR}/{name}");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(namespace_error(format!("creating {path}")))?;
    let made = std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<()> {
                // This thread only: the new namespace is its own, then the mount keeps it.
                nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(nix_error(format!("creating namespace {name}")))?;
                mount(
                    Some("/proc/thread-self/ns/net"),
                    path.as_str(),
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(nix_error(format!("mounting namespace {name} on {path}")))?;
                for (key, value) in sysctls {
                    super::write_sysctl(name, key, value)?;
                }
                Links::here(name)?.up("lo")
            })
            .join()
            .map_err(|_| Error::Panicked)?
    });
    if made.is_err() {
        let _ = umount2(path.as_str(), MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(&path);
    }
    made
}

/// Named network namespaces (`ip netns list`), in no particular order.
///
/// # Errors
///
/// `/run/netns` exists and cannot be read.
pub fn netns_list() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(namespace_error(format!("reading {NETNS_DIR}"))(e)),
    };
    Ok(entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect())
}

/// Deletes a namespace (its interfaces go with it, once the kernel gets to it); a missing one
/// is not an error.
///
/// # Errors
///
/// The namespace's mount or file cannot be removed.
pub fn netns_del(name: &str) -> Result<()> {
    let path = format!("{NETNS_DIR}/{name}");
    if !Path::new(&path).exists() {
        return Ok(());
    }
    match umount2(path.as_str(), MntFlags::MNT_DETACH) {
        // EINVAL: not mounted (a file left by a crash between its creation and the mount).
        Ok(()) | Err(nix::Error::EINVAL) => {}
        Err(e) => return Err(nix_error(format!("unmounting {path}"))(e)),
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(namespace_error(format!("removing {path}"))(e)),
    }
}

/// The processes in each of `namespaces` (what `ip netns pids` finds: a process whose
/// `/proc/PID/ns/net` is the namespace's), from one pass over `/proc`.
fn pids_in(namespaces: &[String]) -> BTreeMap<String, Vec<Pid>> {
    let ids: BTreeMap<(u64, u64), &String> = namespaces
        .iter()
        .filter_map(|ns| {
            let meta = std::fs::metadata(format!("{NETNS_DIR}/{ns}")).ok()?;
            Some(((meta.dev(), meta.ino()), ns))
        })
        .collect();
    let mut found: BTreeMap<String, Vec<Pid>> = BTreeMap::new();
    if ids.is_empty() {
        return found;
    }
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(meta) = std::fs::metadata(entry.path().join("ns/net")) else {
            continue; // gone meanwhile, or a kernel thread
        };
        if let Some(ns) = ids.get(&(meta.dev(), meta.ino())) {
            found
                .entry((*ns).clone())
                .or_default()
                .push(Pid::from_raw(pid));
        }
    }
    found
}

/// Stops every process in namespace `ns`: SIGTERM, up to a second to go, then SIGKILL.
/// Agents of a crashed run must not outlive their lab.
///
/// # Errors
///
/// None today (a process that is gone meanwhile is not an error); a `Result` for callers
/// that chain it with the namespace's removal.
pub fn netns_kill(ns: &str) -> Result<()> {
    netns_kill_all(&[ns.to_string()])
}

/// [`netns_kill`] for many namespaces at once: every process is told to stop together, and
/// the second of patience is shared, not one per namespace.
///
/// # Errors
///
/// As [`netns_kill`].
pub fn netns_kill_all(namespaces: &[String]) -> Result<()> {
    let all =
        |found: BTreeMap<String, Vec<Pid>>| -> Vec<Pid> { found.into_values().flatten().collect() };
    let found = all(pids_in(namespaces));
    if found.is_empty() {
        return Ok(());
    }
    for pid in &found {
        let _ = kill(*pid, Signal::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline && !all(pids_in(namespaces)).is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    for pid in all(pids_in(namespaces)) {
        let _ = kill(pid, Signal::SIGKILL);
    }
    Ok(())
}
