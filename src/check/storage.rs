//! A probe object in each bucket: put, read back, delete.

use std::time::Instant;

use super::{Outcome, Status, bucket_region, outcome, probe_token};
use crate::engine::Observation;
use crate::providers;
use crate::resource::Kind;
use crate::spec::LoadedSpec;

/// A probe object in each bucket: put, get (the same bytes back), delete.
pub(super) async fn storage(loaded: &LoadedSpec, obs: &Observation, aws: &providers::aws::Aws) -> Vec<Outcome> {
    const G: &str = "storage";
    let mut out = Vec::new();
    for d in obs.desired.iter().filter(|d| d.address.kind == Kind::Bucket) {
        let t = Instant::now();
        let name = format!("write, read and delete a probe in {}", d.address);
        let Some(Some(o)) = obs.observed.get(&d.address) else {
            out.push(outcome(G, name, Status::Fail, t, "the bucket does not exist: run `poactl apply`"));
            continue;
        };
        let region = bucket_region(loaded, d);
        let s3 = aws.s3(&region).await;
        let key = format!("poactl-check/{}.txt", probe_token(&loaded.env));
        let body = format!("poactl check probe {key}");
        let version =
            match s3.put_object().bucket(&o.id).key(&key).body(body.clone().into_bytes().into()).content_type("text/plain").send().await {
                Ok(put) => put.version_id().map(String::from),
                Err(e) => {
                    out.push(outcome(
                        G,
                        name,
                        Status::Fail,
                        t,
                        format!("PutObject refused: {}", aws_sdk_s3::error::DisplayErrorContext(&e)),
                    ));
                    continue;
                }
            };
        let read = match s3.get_object().bucket(&o.id).key(&key).send().await {
            Ok(got) => match got.body.collect().await.map(|b| b.into_bytes()) {
                Ok(bytes) if bytes.as_ref() == body.as_bytes() => Ok(()),
                Ok(_) => Err("GetObject returned other bytes than were written".to_string()),
                Err(e) => Err(format!("GetObject body: {e}")),
            },
            Err(e) => Err(format!("GetObject refused: {}", aws_sdk_s3::error::DisplayErrorContext(&e))),
        };
        let deleted = super::remove_probe(&s3, &o.id, &key, version.as_deref()).await;
        match (read, deleted) {
            (Ok(()), Ok(_)) => out.push(outcome(G, name, Status::Pass, t, "")),
            (Err(e), _) => out.push(outcome(G, name, Status::Fail, t, e)),
            (Ok(()), Err(e)) => out.push(outcome(
                G,
                name,
                Status::Fail,
                t,
                format!("the probe {key} could not be deleted ({e}): delete it by hand, every version of it"),
            )),
        }
    }
    out
}
