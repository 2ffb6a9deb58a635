//! Hosts of a test's own: each a network namespace joined to this one by a
//! veth pair, with addresses only on those veths, removed when dropped.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

fn ip(args: &[&str]) -> Output {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A /30 per host from 10.213.0.0/16, distinct within this test process;
/// the process id spreads concurrent test processes apart.
fn next_subnet() -> (u8, u8) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst) + (std::process::id() % 200) * 64;
    let n = n % (256 * 64);
    ((n / 64) as u8, ((n % 64) * 4) as u8)
}

/// One host: the namespace `name`, reached from here at `address` through
/// the veth whose end here is `host_side` (address `gateway`).
pub struct Host {
    pub name: String,
    pub address: String,
    pub gateway: String,
    pub host_side: String,
    pub inner_side: String,
}

impl Host {
    /// Creates the namespace and its link; the link is up.
    pub fn create(label: &str) -> Host {
        let (third, fourth) = next_subnet();
        let tag = format!("{:x}{}", std::process::id() % 0xfff, fourth / 4);
        let name = format!("rd-{label}-{tag}");
        let host_side = format!("rdh{third}x{}", fourth / 4);
        let inner_side = format!("rdi{third}x{}", fourth / 4);
        let gateway = format!("10.213.{third}.{}", fourth + 1);
        let address = format!("10.213.{third}.{}", fourth + 2);
        // Leftovers of an earlier run that died go first.
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let _ = Command::new("ip")
            .args(["link", "del", &host_side])
            .output();
        ip(&["netns", "add", &name]);
        ip(&[
            "link",
            "add",
            &host_side,
            "type",
            "veth",
            "peer",
            "name",
            &inner_side,
        ]);
        ip(&["link", "set", &inner_side, "netns", &name]);
        ip(&["addr", "add", &format!("{gateway}/30"), "dev", &host_side]);
        ip(&["link", "set", &host_side, "up"]);
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{address}/30"),
            "dev",
            &inner_side,
        ]);
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "link",
            "set",
            &inner_side,
            "up",
        ]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        Host {
            name,
            address,
            gateway,
            host_side,
            inner_side,
        }
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Takes the link down (a lost host) or up again.
    pub fn link(&self, up: bool) {
        ip(&[
            "link",
            "set",
            &self.host_side,
            if up { "up" } else { "down" },
        ]);
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_side])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}
