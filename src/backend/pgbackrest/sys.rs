//! The few POSIX calls the fleet needs that std does not offer: looking up
//! an account, signalling a process group, and asking whether a process
//! lives. Each is a thin, checked wrapper.

use std::ffi::{CStr, CString};

/// The effective user id of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// `(uid, gid, home)` of an account, through the system's user database.
pub fn user_by_name(name: &str) -> Result<Option<(u32, u32, String)>, String> {
    let c_name = CString::new(name).map_err(|_| format!("{name:?} is not a user name"))?;
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data; an all-zero value is valid.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; getpwnam_r writes the
    // strings into `buffer`, which outlives every use of `entry` below.
    let rc = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if rc != 0 {
        return Err(format!(
            "looking up the OS user {name:?}: {}",
            std::io::Error::from_raw_os_error(rc)
        ));
    }
    if found.is_null() {
        return Ok(None);
    }
    // SAFETY: getpwnam_r succeeded, so pw_dir points to a NUL-terminated
    // string inside `buffer`.
    let home = unsafe { CStr::from_ptr(entry.pw_dir) }
        .to_string_lossy()
        .into_owned();
    Ok(Some((entry.pw_uid, entry.pw_gid, home)))
}

/// Sends `signal` to every process of the group `pgid`. Errors (the group
/// is gone already) are of no interest to callers.
pub fn kill_group(pgid: i32, signal: i32) {
    if pgid > 1 {
        // SAFETY: kill has no memory effects; a negative pid names a group.
        unsafe {
            libc::kill(-pgid, signal);
        }
    }
}

/// Sends `signal` to one process.
pub fn kill(pid: i32, signal: i32) {
    if pid > 1 {
        // SAFETY: kill has no memory effects.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Is `pid` a live process (not a zombie waiting to be reaped)?
pub fn alive(pid: i32) -> bool {
    if pid <= 1 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses: `Z` is a zombie.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Does any live (non-zombie) process belong to the group `pgid`?
pub fn group_alive(pgid: i32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            return false;
        };
        // After the command name: state, ppid, pgrp, …
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return false;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("Z");
        let pgrp = fields.nth(1).and_then(|p| p.parse::<i32>().ok());
        pgrp == Some(pgid) && state != "Z" && state != "X"
    })
}

/// The command line of `pid`, arguments joined by spaces.
pub fn command_line(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|part| String::from_utf8_lossy(part).into_owned())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_exists_and_this_process_lives() {
        let (uid, _, _) = user_by_name("root").unwrap().unwrap();
        assert_eq!(uid, 0);
        assert_eq!(user_by_name("no-such-user-here").unwrap(), None);
        assert!(alive(std::process::id() as i32));
        assert!(!alive(0));
    }
}
