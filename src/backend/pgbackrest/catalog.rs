//! Reading the repositories: `pgbackrest info`, and the newest archived transaction end decoded with `pg_waldump`.

use super::reach::Reach;
use super::*;

impl PgBackRestBackend {
    /// `pgbackrest info` for one cluster's stanza.
    pub async fn info(&self, cluster: &Cluster) -> Result<StanzaInfo, FleetError> {
        let reach = self.reach_or_fail(cluster).await?;
        self.read_info(&reach).await
    }

    /// `pg_waldump` of one archived segment fetched from `zone` with
    /// `archive-get` into scratch space (removed after), of resource
    /// manager `rmgr` only when given.
    pub(super) async fn dump_segment(
        &self,
        reach: &Reach,
        zone: Zone,
        segment: &str,
        rmgr: Option<&str>,
    ) -> Result<String, String> {
        let scratch = self.layout.tmp().join(Uuid::new_v4().simple().to_string());
        make_dir(&scratch, &self.user, 0o700).map_err(|e| e.to_string())?;
        let file = scratch.join(segment);
        let outcome = async {
            if reach.networked {
                self.fetch_from_repository(reach, zone, segment, &scratch)
                    .await?;
            } else {
                let mut get = self.backrest(&reach.conf, &reach.stanza);
                get.args(reach.transfer_args(zone));
                get.arg("archive-get").arg(segment).arg(&file);
                self.must_succeed(get, StdDuration::from_secs(60)).await?;
            }
            let mut dump = self.user.command(self.bin.join("pg_waldump"), &scratch);
            if let Some(rmgr) = rmgr {
                dump.arg(format!("--rmgr={rmgr}"));
            }
            dump.arg(&file);
            // pg_waldump complains past the segment's last record; what it
            // printed before that is complete.
            let done = run_quiet(dump, StdDuration::from_secs(60))
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(done.stdout)
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&scratch).await;
        outcome
    }

    /// One archived segment read from `zone`'s repository into `scratch`,
    /// across hosts: `archive-get` checks the segment against a data
    /// directory this host does not have, so the file is found with
    /// `repo-ls`, read (decrypted) with `repo-get` and decompressed here.
    async fn fetch_from_repository(
        &self,
        reach: &Reach,
        zone: Zone,
        segment: &str,
        scratch: &Path,
    ) -> Result<(), String> {
        let list = |path: String, filter: Option<String>| {
            let mut ls = self.backrest(&reach.conf, &reach.stanza);
            ls.args(reach.transfer_args(zone)).arg("--output=json");
            if let Some(filter) = filter {
                ls.arg(format!("--filter={filter}"));
            }
            ls.arg("repo-ls").arg(path);
            ls
        };
        let stanza_dir = format!("archive/{}", reach.stanza);
        let listed = self
            .must_succeed(list(stanza_dir.clone(), None), StdDuration::from_secs(30))
            .await?;
        let archive_id = info::newest_archive_id(&listed.stdout)
            .ok_or_else(|| format!("no archive in {stanza_dir} of {zone}"))?;
        let dir = format!(
            "{stanza_dir}/{archive_id}/{}",
            &segment[..16.min(segment.len())]
        );
        let listed = self
            .must_succeed(
                list(dir.clone(), Some(format!("^{segment}"))),
                StdDuration::from_secs(30),
            )
            .await?;
        let name = info::first_file(&listed.stdout)
            .ok_or_else(|| format!("{segment} is not in {zone}'s archive"))?;
        let fetched = scratch.join(&name);
        let mut get = self.backrest(&reach.conf, &reach.stanza);
        get.args(reach.transfer_args(zone))
            .arg("repo-get")
            .arg(format!("{dir}/{name}"));
        let (status, bytes, stderr) = process::run_binary(get, StdDuration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err(format!("repo-get of {segment}: {}", stderr.trim()));
        }
        std::fs::write(&fetched, bytes).map_err(|e| e.to_string())?;
        self.user.own(&fetched).map_err(|e| e.to_string())?;
        let target = scratch.join(segment);
        let decompress = |program: &str, args: &[&str]| {
            let mut c = self.user.command(program, scratch);
            c.args(args).arg(&fetched).arg("-o").arg(&target);
            c
        };
        let command = match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("zst") => Some(decompress("zstd", &["-dqf"])),
            Some("lz4") => {
                let mut c = self.user.command("lz4", scratch);
                c.arg("-dqf").arg(&fetched).arg(&target);
                Some(c)
            }
            Some("gz") | Some("bz2") => {
                let program = if name.ends_with(".gz") {
                    "gzip"
                } else {
                    "bzip2"
                };
                let out = std::fs::File::create(&target).map_err(|e| e.to_string())?;
                let mut c = self.user.command(program, scratch);
                c.arg("-dc")
                    .arg(&fetched)
                    .stdout(std::process::Stdio::from(out));
                Some(c)
            }
            _ => None,
        };
        match command {
            Some(command) => {
                let done = run_quiet(command, StdDuration::from_secs(60))
                    .await
                    .map_err(|e| e.to_string())?;
                if !done.success() {
                    return Err(format!("decompressing {name}: {}", done.reason()));
                }
            }
            None => std::fs::rename(&fetched, &target).map_err(|e| e.to_string())?,
        }
        Ok(())
    }

    /// When the newest transaction recorded in `segment` ended, decoding
    /// the segment fetched from `zone` (cached: archived segments never change).
    pub(super) async fn segment_end(
        &self,
        reach: &Reach,
        zone: Zone,
        segment: &str,
    ) -> Result<Option<DateTime<Utc>>, String> {
        let key = (reach.stanza.clone(), segment.to_string());
        if let Some(known) = self.segment_ends.lock().expect("cache lock").get(&key) {
            return Ok(*known);
        }
        let dump = self
            .dump_segment(reach, zone, segment, Some("Transaction"))
            .await?;
        let end = last_transaction_end(&dump);
        let mut cache = self.segment_ends.lock().expect("cache lock");
        if cache.len() >= SEGMENT_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(key, end);
        Ok(end)
    }

    /// Per zone, the last moment recovery can stop at: just before the
    /// newest transaction end archived there. Looks back a few segments
    /// when the newest holds none (a switch with no transaction in it).
    pub(super) async fn log_ends(
        &self,
        reach: &Reach,
        info: &StanzaInfo,
    ) -> BTreeMap<Zone, DateTime<Utc>> {
        const LOOK_BACK: usize = 8;
        let mut ends = BTreeMap::new();
        for (zone, newest) in info.newest_segments() {
            let oldest = info
                .repo(zone)
                .and_then(|r| r.wal.as_ref())
                .map(|(min, _)| min.clone())
                .unwrap_or_default();
            let mut segment = Some(newest);
            for _ in 0..LOOK_BACK {
                let Some(current) = segment.take().filter(|s| *s >= oldest) else {
                    break;
                };
                match self.segment_end(reach, zone, &current).await {
                    Ok(Some(end)) => {
                        ends.insert(zone, end - Duration::microseconds(1));
                        break;
                    }
                    Ok(None) => segment = info::previous_segment(&current),
                    Err(error) => {
                        tracing::warn!(%zone, %error, "reading archived WAL");
                        break;
                    }
                }
            }
        }
        ends
    }
}
