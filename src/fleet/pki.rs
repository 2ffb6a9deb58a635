//! A fleet's certificates, issued once with the `openssl` command line: a
//! small CA, and per host a server certificate named by the DNS name clients
//! connect to and a client certificate named by the host, so that a
//! pgBackRest TLS server can let clients in by name
//! (`tls-server-auth=<host>=*`).
//!
//! pgBackRest 2.45 matches a server only by common name or DNS
//! subject-alternative name, never by address, so no address is issued.
//!
//! The folder holds:
//!
//! ```text
//! ca.key                 the CA's key, mode 600, owned by whoever issues
//! ca.crt                 the CA's certificate
//! hosts/<name>/          mode 700, owned by the account that runs pgBackRest
//!     ca.crt server.crt server.key client.crt client.key
//! ```
//!
//! Issuing is blocking (it waits for `openssl`) and meant for one issuer at a
//! time per folder.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The CA's certificate, in the folder and in each host's folder.
pub const CA_CERT: &str = "ca.crt";
/// The certificate a host's pgBackRest TLS server presents.
pub const SERVER_CERT: &str = "server.crt";
pub const SERVER_KEY: &str = "server.key";
/// The certificate a host presents when it connects to another host.
pub const CLIENT_CERT: &str = "client.crt";
pub const CLIENT_KEY: &str = "client.key";

const CA_KEY: &str = "ca.key";
const HOSTS: &str = "hosts";
/// Nothing renews these yet, and only the fleet's own servers trust the CA,
/// so both the CA and the hosts' certificates last ten years.
const VALID_DAYS: &str = "3650";
/// The longest common name X.509 allows.
const MAX_NAME: usize = 64;

/// One host of the fleet as its certificates name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertHost {
    /// The host's name in the fleet (`az1`): its client certificate's
    /// common name and its folder's name.
    pub name: String,
    /// The name clients connect to (`az1.fleet.test`): its server
    /// certificate's common name and DNS subject-alternative name.
    pub dns: String,
}

/// Why a fleet's certificates could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error(
        "{what} {name:?} cannot be used: use 1 to 64 letters, digits, '-' and '.', \
         starting with a letter or digit, with no '..' and no '.' at the end"
    )]
    InvalidName { what: &'static str, name: String },
    #[error("the host {0:?} is listed twice")]
    DuplicateHost(String),
    #[error(
        "the fleet's CA key {} is missing, so no new host can be signed; \
         put it back, or issue a new fleet into an empty folder",
        .0.display()
    )]
    CaKeyMissing(PathBuf),
    #[error(
        "the fleet's CA certificate {} is missing while hosts were issued in {}; \
         put it back, or issue a new fleet into an empty folder",
        .ca.display(), .hosts.display()
    )]
    CaCertMissing { ca: PathBuf, hosts: PathBuf },
    #[error(
        "the host {name:?} was issued for another DNS name than {dns:?}; \
         remove {} to issue it again",
        .dir.display()
    )]
    HostChanged {
        name: String,
        dns: String,
        dir: PathBuf,
    },
    #[error("cannot run openssl (is it installed?): {0}")]
    OpensslMissing(std::io::Error),
    #[error("openssl could not {step}: {stderr}")]
    Openssl { step: String, stderr: String },
    #[error("{doing} {}: {source}", .path.display())]
    Io {
        doing: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The folder holding a host's certificates and keys.
pub fn host_dir(dir: &Path, name: &str) -> PathBuf {
    dir.join(HOSTS).join(name)
}

/// Issues the CA (unless `dir` has one) and every host in `hosts` that has
/// no folder yet; hosts already issued keep their files, so adding a host
/// later issues only that host. Each host's folder is chowned to `owner`
/// (the account that runs pgBackRest, which insists on owning its keys);
/// the CA key stays with the caller. `dir` must be traversable by `owner`.
pub fn issue(dir: &Path, hosts: &[CertHost], owner: Option<(u32, u32)>) -> Result<(), PkiError> {
    check_names(hosts)?;
    make_dir(dir, 0o755)?;
    let hosts_dir = dir.join(HOSTS);
    make_dir(&hosts_dir, 0o755)?;

    let mut pending = Vec::new();
    for host in hosts {
        let issued = host_dir(dir, &host.name);
        if issued.is_dir() {
            check_issued_for(host, &issued)?;
        } else {
            pending.push(host);
        }
    }
    ensure_ca(dir, !pending.is_empty())?;
    for host in pending {
        issue_host(dir, host, owner)?;
    }
    Ok(())
}

/// All names are checked before anything is written: they end up in file
/// names and in openssl's configuration text.
fn check_names(hosts: &[CertHost]) -> Result<(), PkiError> {
    for (i, host) in hosts.iter().enumerate() {
        check_name("host name", &host.name)?;
        check_name("DNS name", &host.dns)?;
        if hosts[..i].iter().any(|h| h.name == host.name) {
            return Err(PkiError::DuplicateHost(host.name.clone()));
        }
    }
    Ok(())
}

fn check_name(what: &'static str, name: &str) -> Result<(), PkiError> {
    let usable = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.starts_with(['-', '.'])
        && !name.ends_with('.')
        && !name.contains("..");
    if usable {
        Ok(())
    } else {
        Err(PkiError::InvalidName {
            what,
            name: name.to_string(),
        })
    }
}

/// A host folder issued for another DNS name would make its server fail
/// every client's name check, so it is refused rather than kept silently.
fn check_issued_for(host: &CertHost, issued: &Path) -> Result<(), PkiError> {
    let names = openssl_output(
        "read the names of an issued server certificate",
        issued,
        &[
            "x509".as_ref(),
            "-noout".as_ref(),
            "-ext".as_ref(),
            "subjectAltName".as_ref(),
            "-in".as_ref(),
            issued.join(SERVER_CERT).as_os_str(),
        ],
    )?;
    let wanted = format!("DNS:{}", host.dns);
    let matches = names
        .lines()
        .skip(1)
        .any(|line| line.split(',').map(str::trim).eq([wanted.as_str()]));
    if matches {
        Ok(())
    } else {
        Err(PkiError::HostChanged {
            name: host.name.clone(),
            dns: host.dns.clone(),
            dir: issued.to_path_buf(),
        })
    }
}

/// Creates the CA unless its certificate exists. The certificate is put in
/// place last, so a key without a certificate is an interrupted first
/// issue and is replaced.
fn ensure_ca(dir: &Path, will_sign: bool) -> Result<(), PkiError> {
    let (key, cert) = (dir.join(CA_KEY), dir.join(CA_CERT));
    if cert.is_file() {
        if will_sign && !key.is_file() {
            return Err(PkiError::CaKeyMissing(key));
        }
        return Ok(());
    }
    let hosts = dir.join(HOSTS);
    let any_issued = fs::read_dir(&hosts)
        .map_err(|source| io("reading", &hosts, source))?
        .flatten()
        .any(|e| !e.file_name().to_string_lossy().starts_with('.'));
    if any_issued {
        return Err(PkiError::CaCertMissing { ca: cert, hosts });
    }

    let staging = fresh_dir(&dir.join(".ca.partial"))?;
    write(
        &staging.join("ca.cnf"),
        "[req]\n\
         distinguished_name = dn\n\
         prompt = no\n\
         x509_extensions = ca\n\
         [dn]\n\
         CN = Restore Desk fleet CA\n\
         [ca]\n\
         basicConstraints = critical, CA:TRUE, pathlen:0\n\
         keyUsage = critical, keyCertSign, cRLSign\n\
         subjectKeyIdentifier = hash\n",
    )?;
    openssl(
        "create the fleet's CA",
        &staging,
        &[
            "req",
            "-x509",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            VALID_DAYS,
            "-config",
            "ca.cnf",
            "-keyout",
            CA_KEY,
            "-out",
            CA_CERT,
        ]
        .map(OsStr::new),
    )?;
    set_mode(&staging.join(CA_KEY), 0o600)?;
    set_mode(&staging.join(CA_CERT), 0o644)?;
    rename(&staging.join(CA_KEY), &key)?;
    rename(&staging.join(CA_CERT), &cert)?;
    fs::remove_dir_all(&staging).map_err(|source| io("removing", &staging, source))
}

/// Issues one host in a hidden folder next to its final place and renames
/// it into place, so a host folder is either complete or absent.
fn issue_host(dir: &Path, host: &CertHost, owner: Option<(u32, u32)>) -> Result<(), PkiError> {
    let staging = fresh_dir(&dir.join(HOSTS).join(format!(".{}.partial", host.name)))?;
    let ca_cert = dir.join(CA_CERT);
    let ca_key = dir.join(CA_KEY);
    let server = Leaf {
        common_name: &host.dns,
        usage: "serverAuth",
        alt_names: Some(&host.dns),
        key: SERVER_KEY,
        cert: SERVER_CERT,
    };
    let client = Leaf {
        common_name: &host.name,
        usage: "clientAuth",
        alt_names: None,
        key: CLIENT_KEY,
        cert: CLIENT_CERT,
    };
    for leaf in [server, client] {
        leaf.issue(&staging, &ca_cert, &ca_key)?;
    }
    let copy = staging.join(CA_CERT);
    fs::copy(&ca_cert, &copy)
        .map_err(|source| io("copying the CA certificate to", &copy, source))?;

    for (file, mode) in [
        (CA_CERT, 0o644),
        (SERVER_CERT, 0o644),
        (SERVER_KEY, 0o600),
        (CLIENT_CERT, 0o644),
        (CLIENT_KEY, 0o600),
    ] {
        let path = staging.join(file);
        set_mode(&path, mode)?;
        chown(&path, owner)?;
    }
    chown(&staging, owner)?;
    rename(&staging, &host_dir(dir, &host.name))
}

/// One certificate of a host, signed by the fleet's CA.
struct Leaf<'a> {
    common_name: &'a str,
    usage: &'a str,
    alt_names: Option<&'a str>,
    key: &'a str,
    cert: &'a str,
}

impl Leaf<'_> {
    fn issue(&self, staging: &Path, ca_cert: &Path, ca_key: &Path) -> Result<(), PkiError> {
        let request = format!("{}.cnf", self.cert);
        let extensions = format!("{}.ext", self.cert);
        let signing_request = format!("{}.csr", self.cert);
        write(
            &staging.join(&request),
            &format!(
                "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = {}\n",
                self.common_name
            ),
        )?;
        let alt_names = self
            .alt_names
            .map(|dns| format!("subjectAltName = DNS:{dns}\n"))
            .unwrap_or_default();
        write(
            &staging.join(&extensions),
            &format!(
                "[leaf]\n\
                 basicConstraints = critical, CA:FALSE\n\
                 keyUsage = critical, digitalSignature\n\
                 extendedKeyUsage = {}\n\
                 {alt_names}\
                 subjectKeyIdentifier = hash\n\
                 authorityKeyIdentifier = keyid\n",
                self.usage
            ),
        )?;
        openssl(
            &format!("create the key of {}", self.common_name),
            staging,
            &[
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-config",
                &request,
                "-keyout",
                self.key,
                "-out",
                &signing_request,
            ]
            .map(OsStr::new),
        )?;
        // A random serial: no serial file to keep next to the CA key.
        let serial = format!("0x{:032x}", (rand::random::<u128>() >> 1) | 1);
        openssl(
            &format!("sign the certificate of {}", self.common_name),
            staging,
            &[
                "x509".as_ref(),
                "-req".as_ref(),
                "-in".as_ref(),
                signing_request.as_ref(),
                "-CA".as_ref(),
                ca_cert.as_os_str(),
                "-CAkey".as_ref(),
                ca_key.as_os_str(),
                "-set_serial".as_ref(),
                serial.as_ref(),
                "-days".as_ref(),
                VALID_DAYS.as_ref(),
                "-extfile".as_ref(),
                extensions.as_ref(),
                "-extensions".as_ref(),
                "leaf".as_ref(),
                "-out".as_ref(),
                self.cert.as_ref(),
            ],
        )?;
        for scratch in [request, extensions, signing_request] {
            let path = staging.join(scratch);
            fs::remove_file(&path).map_err(|source| io("removing", &path, source))?;
        }
        Ok(())
    }
}

/// Runs openssl with its output captured: nothing it says reaches a log,
/// and only its stderr (never a key) reaches the error.
fn openssl_output(step: &str, cwd: &Path, args: &[&OsStr]) -> Result<String, PkiError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .map_err(PkiError::OpensslMissing)?;
    if !out.status.success() {
        return Err(PkiError::Openssl {
            step: step.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn openssl(step: &str, cwd: &Path, args: &[&OsStr]) -> Result<(), PkiError> {
    openssl_output(step, cwd, args).map(drop)
}

fn io(doing: &'static str, path: &Path, source: std::io::Error) -> PkiError {
    PkiError::Io {
        doing,
        path: path.to_path_buf(),
        source,
    }
}

/// Creates `path` with `mode` unless it exists.
fn make_dir(path: &Path, mode: u32) -> Result<(), PkiError> {
    if path.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|source| io("creating", path, source))?;
    // The umask may have narrowed the mode.
    set_mode(path, mode)
}

/// An empty folder only the caller can read, for files on their way into
/// place; leftovers of an interrupted issue are removed first.
fn fresh_dir(path: &Path) -> Result<PathBuf, PkiError> {
    if path.exists() {
        fs::remove_dir_all(path).map_err(|source| io("removing", path, source))?;
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .map_err(|source| io("creating", path, source))?;
    Ok(path.to_path_buf())
}

fn write(path: &Path, text: &str) -> Result<(), PkiError> {
    fs::write(path, text).map_err(|source| io("writing", path, source))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), PkiError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|source| io("setting the mode of", path, source))
}

fn chown(path: &Path, owner: Option<(u32, u32)>) -> Result<(), PkiError> {
    let Some((uid, gid)) = owner else {
        return Ok(());
    };
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .map_err(|source| io("changing the owner of", path, source))
}

fn rename(from: &Path, to: &Path) -> Result<(), PkiError> {
    fs::rename(from, to).map_err(|source| io("moving into place", to, source))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::MetadataExt;

    use super::*;

    fn host(name: &str) -> CertHost {
        CertHost {
            name: name.to_string(),
            dns: format!("{name}.fleet.test"),
        }
    }

    /// A folder for one test; `pki` inside it is where issuing goes.
    fn scratch() -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        (dir, pki)
    }

    /// Every file under `dir` with its contents.
    fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        let mut todo = vec![dir.to_path_buf()];
        while let Some(next) = todo.pop() {
            for entry in fs::read_dir(&next).unwrap().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    todo.push(path);
                } else {
                    let bytes = fs::read(&path).unwrap();
                    files.insert(path.strip_prefix(dir).unwrap().to_path_buf(), bytes);
                }
            }
        }
        files
    }

    fn run(program: &str, args: &[&OsStr]) -> (bool, String) {
        let out = Command::new(program).args(args).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    }

    /// Whether `cert` verifies against the CA in `ca` for `purpose`.
    fn verifies(ca: &Path, purpose: &str, cert: &Path) -> bool {
        let (ok, text) = run(
            "openssl",
            &[
                "verify".as_ref(),
                "-CAfile".as_ref(),
                ca.as_os_str(),
                "-purpose".as_ref(),
                purpose.as_ref(),
                cert.as_os_str(),
            ],
        );
        ok && text.contains(": OK")
    }

    fn text_of(cert: &Path) -> String {
        let (ok, text) = run(
            "openssl",
            &[
                "x509".as_ref(),
                "-noout".as_ref(),
                "-text".as_ref(),
                "-in".as_ref(),
                cert.as_os_str(),
            ],
        );
        assert!(ok, "{text}");
        text
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    /// An owner the process may chown to: another account when it runs as
    /// root, else itself.
    fn some_owner(dir: &Path) -> (u32, u32) {
        let mine = fs::metadata(dir).unwrap();
        if mine.uid() == 0 {
            (65534, 65534)
        } else {
            (mine.uid(), mine.gid())
        }
    }

    #[test]
    fn issuing_twice_keeps_the_ca_and_every_file() {
        let (_tmp, pki) = scratch();
        let hosts = [host("az1"), host("r1")];
        issue(&pki, &hosts, None).unwrap();
        let first = snapshot(&pki);
        let names: Vec<String> = first.keys().map(|p| p.display().to_string()).collect();
        assert_eq!(
            names,
            [
                "ca.crt",
                "ca.key",
                "hosts/az1/ca.crt",
                "hosts/az1/client.crt",
                "hosts/az1/client.key",
                "hosts/az1/server.crt",
                "hosts/az1/server.key",
                "hosts/r1/ca.crt",
                "hosts/r1/client.crt",
                "hosts/r1/client.key",
                "hosts/r1/server.crt",
                "hosts/r1/server.key",
            ]
        );
        issue(&pki, &hosts, None).unwrap();
        assert!(first == snapshot(&pki), "a second issue changed files");
    }

    #[test]
    fn a_host_added_later_is_signed_by_the_same_ca() {
        let (_tmp, pki) = scratch();
        issue(&pki, &[host("az1")], None).unwrap();
        let ca = fs::read(pki.join(CA_CERT)).unwrap();
        let az1 = snapshot(&host_dir(&pki, "az1"));

        issue(&pki, &[host("az1"), host("r1")], None).unwrap();
        assert_eq!(fs::read(pki.join(CA_CERT)).unwrap(), ca);
        assert!(az1 == snapshot(&host_dir(&pki, "az1")));
        let r1 = host_dir(&pki, "r1");
        assert_eq!(fs::read(r1.join(CA_CERT)).unwrap(), ca);
        for dir in [host_dir(&pki, "az1"), r1.clone()] {
            assert!(verifies(
                &pki.join(CA_CERT),
                "sslserver",
                &dir.join(SERVER_CERT)
            ));
            assert!(verifies(
                &pki.join(CA_CERT),
                "sslclient",
                &dir.join(CLIENT_CERT)
            ));
        }
        // The check can fail: another fleet's CA does not vouch for r1.
        let (_other_tmp, other) = scratch();
        issue(&other, &[host("r1")], None).unwrap();
        assert!(!verifies(
            &other.join(CA_CERT),
            "sslserver",
            &r1.join(SERVER_CERT)
        ));
    }

    #[test]
    fn the_server_is_named_by_its_dns_name_and_the_client_by_the_host() {
        let (_tmp, pki) = scratch();
        issue(
            &pki,
            &[CertHost {
                name: "az1".into(),
                dns: "zone-1.fleet.test".into(),
            }],
            None,
        )
        .unwrap();
        let dir = host_dir(&pki, "az1");
        let server = text_of(&dir.join(SERVER_CERT));
        assert!(
            server.contains("Subject: CN = zone-1.fleet.test"),
            "{server}"
        );
        assert!(server.contains("DNS:zone-1.fleet.test"), "{server}");
        assert!(server.contains("TLS Web Server Authentication"), "{server}");
        assert!(!server.contains("IP Address"), "{server}");
        let client = text_of(&dir.join(CLIENT_CERT));
        assert!(client.contains("Subject: CN = az1\n"), "{client}");
        assert!(client.contains("TLS Web Client Authentication"), "{client}");
        assert!(
            !client.contains("TLS Web Server Authentication"),
            "{client}"
        );
        assert!(!verifies(
            &dir.join(CA_CERT),
            "sslserver",
            &dir.join(CLIENT_CERT)
        ));
    }

    #[test]
    fn keys_are_private_and_hosts_belong_to_the_owner() {
        let (tmp, pki) = scratch();
        let owner = some_owner(tmp.path());
        issue(&pki, &[host("az1")], Some(owner)).unwrap();
        let me = fs::metadata(tmp.path()).unwrap();
        let ca_key = fs::metadata(pki.join(CA_KEY)).unwrap();
        assert_eq!(mode(&pki.join(CA_KEY)), 0o600);
        assert_eq!((ca_key.uid(), ca_key.gid()), (me.uid(), me.gid()));
        assert_eq!(mode(&pki.join(CA_CERT)), 0o644);
        assert_eq!(mode(&pki), 0o755);
        assert_eq!(mode(&pki.join(HOSTS)), 0o755);

        let dir = host_dir(&pki, "az1");
        assert_eq!(mode(&dir), 0o700);
        for (file, expected) in [
            (CA_CERT, 0o644),
            (SERVER_CERT, 0o644),
            (SERVER_KEY, 0o600),
            (CLIENT_CERT, 0o644),
            (CLIENT_KEY, 0o600),
        ] {
            assert_eq!(mode(&dir.join(file)), expected, "{file}");
        }
        for path in snapshot(&dir)
            .keys()
            .map(|p| dir.join(p))
            .chain([dir.clone()])
        {
            let meta = fs::metadata(&path).unwrap();
            assert_eq!((meta.uid(), meta.gid()), owner, "{}", path.display());
        }
    }

    #[test]
    fn a_bad_name_is_refused_before_anything_is_written() {
        let (_tmp, pki) = scratch();
        let too_long = "a".repeat(65);
        let bad = [
            ("-az1", "az1.fleet.test"),
            (".hidden", "az1.fleet.test"),
            ("..", "az1.fleet.test"),
            ("a/b", "az1.fleet.test"),
            ("az 1", "az1.fleet.test"),
            ("", "az1.fleet.test"),
            ("az1", "az1.fleet.test\nCN = evil"),
            ("az1", "az1..fleet.test"),
            ("az1", "az1.fleet.test."),
            ("az1", too_long.as_str()),
        ];
        for (name, dns) in bad {
            let hosts = [
                host("r1"),
                CertHost {
                    name: name.into(),
                    dns: dns.into(),
                },
            ];
            let err = issue(&pki, &hosts, None).unwrap_err();
            assert!(
                matches!(err, PkiError::InvalidName { .. }),
                "{name:?} {dns:?}: {err}"
            );
            assert!(!pki.exists(), "{name:?} {dns:?} created files");
        }
        let twice = issue(&pki, &[host("r1"), host("r1")], None).unwrap_err();
        assert!(matches!(twice, PkiError::DuplicateHost(_)), "{twice}");
        assert!(!pki.exists());
    }

    #[test]
    fn a_host_issued_for_another_dns_name_is_refused() {
        let (_tmp, pki) = scratch();
        issue(&pki, &[host("az1")], None).unwrap();
        let moved = CertHost {
            name: "az1".into(),
            dns: "az1.elsewhere.test".into(),
        };
        let err = issue(&pki, &[moved], None).unwrap_err();
        assert!(matches!(err, PkiError::HostChanged { .. }), "{err}");
        assert!(err.to_string().contains("remove"), "{err}");
    }

    #[test]
    fn a_new_host_without_the_ca_key_is_refused() {
        let (_tmp, pki) = scratch();
        issue(&pki, &[host("az1")], None).unwrap();
        fs::remove_file(pki.join(CA_KEY)).unwrap();
        // Nothing to sign: fine.
        issue(&pki, &[host("az1")], None).unwrap();
        let err = issue(&pki, &[host("az1"), host("r1")], None).unwrap_err();
        assert!(matches!(err, PkiError::CaKeyMissing(_)), "{err}");
        assert!(!host_dir(&pki, "r1").exists());
    }
}
