//! MCA proof-tier program for kube-rs: a Pod's app that talks to the
//! Kubernetes API only through kube-rs's in-cluster configuration
//! (`KUBERNETES_SERVICE_HOST`/`_PORT` plus the service-account directory).
//!
//! Prints one JSON line per operation on stdout:
//! `{"op": "...", "ok": true|false, "detail": "..."}`. Exits 0 even when
//! operations fail; a non-zero exit means the program itself crashed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Client, Config};
use serde_json::json;

const SDK: &str = "rust";
const NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
const FIELD_MANAGER: &str = "mca-sdk-rust";
const WATCH_DEADLINE: Duration = Duration::from_secs(20);

/// Set by build.rs from Cargo.lock.
const KUBE_VERSION: &str = env!("MCA_KUBE_VERSION");
const K8S_OPENAPI_VERSION: &str = env!("MCA_K8S_OPENAPI_VERSION");

fn emit(op: &str, ok: bool, detail: impl Into<String>) {
    // Fixed key order: op, ok, detail.
    println!(
        "{{\"op\": {}, \"ok\": {ok}, \"detail\": {}}}",
        json!(op),
        json!(detail.into())
    );
}

fn head(text: &str, max: usize) -> String {
    let text = text.trim();
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

/// "kube::Error::<Variant>: message (caused by: ...)", or code + reason +
/// message for an API error (a Status the server sent).
fn describe(error: &kube::Error) -> String {
    if let kube::Error::Api(status) = error {
        return format!(
            "kube::Error::Api {} {}: {}",
            status.code,
            status.reason,
            head(&status.message, 200)
        );
    }
    let debug = format!("{error:?}");
    let variant: String = debug
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let mut text = format!("kube::Error::{variant}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(" (caused by: {cause})"));
        source = cause.source();
    }
    head(&text, 400)
}

fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::main]
async fn main() {
    emit(
        "version",
        true,
        format!("kube {KUBE_VERSION} (k8s-openapi {K8S_OPENAPI_VERSION})"),
    );

    let namespace = match std::fs::read_to_string(NAMESPACE_FILE) {
        Ok(text) => text.trim().to_string(),
        Err(error) => {
            eprintln!("cannot read {NAMESPACE_FILE}: {error}");
            std::process::exit(2);
        }
    };
    // The SDK's in-cluster configuration: env vars + service-account files.
    let config = match Config::incluster() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("kube::Config::incluster() failed: {error:?}");
            std::process::exit(2);
        }
    };
    let client = match Client::try_from(config) {
        Ok(client) => client,
        Err(error) => {
            eprintln!("kube::Client::try_from(config) failed: {error:?}");
            std::process::exit(2);
        }
    };

    let seed = format!("sdk-{SDK}-seed");
    let name = format!("sdk-{SDK}-x");
    let label = format!("sdk={SDK}");
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);

    // whoami
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    match reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(review) => {
            let user = review
                .status
                .and_then(|s| s.user_info)
                .and_then(|u| u.username)
                .unwrap_or_default();
            emit("whoami", !user.is_empty(), user);
        }
        Err(error) => emit("whoami", false, describe(&error)),
    }

    // get
    match configmaps.get(&seed).await {
        Ok(cm) => emit(
            "get",
            true,
            format!(
                "{} rv={}",
                cm.metadata.name.unwrap_or_default(),
                cm.metadata.resource_version.unwrap_or_default()
            ),
        ),
        Err(error) => emit("get", false, describe(&error)),
    }

    // list
    match configmaps.list(&ListParams::default()).await {
        Ok(list) => {
            let names: Vec<String> = list
                .items
                .into_iter()
                .filter_map(|cm| cm.metadata.name)
                .collect();
            let found = names.contains(&seed);
            emit(
                "list",
                found,
                format!(
                    "{} items, seed {}",
                    names.len(),
                    if found { "present" } else { "missing" }
                ),
            );
        }
        Err(error) => emit("list", false, describe(&error)),
    }

    // create (after removing a leftover)
    let mut leftover = String::new();
    match configmaps.delete(&name, &DeleteParams::default()).await {
        Ok(_) => {
            leftover = " (deleted a leftover first)".to_string();
            // Wait until it is really gone.
            for _ in 0..50 {
                if matches!(configmaps.get_opt(&name).await, Ok(None)) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(error) => leftover = format!(" (deleting a leftover failed: {})", describe(&error)),
    }
    let object = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: Some(data(&[("sdk", SDK)])),
            ..Default::default()
        },
        data: Some(data(&[("a", "1")])),
        ..Default::default()
    };
    match configmaps.create(&PostParams::default(), &object).await {
        Ok(cm) => emit(
            "create",
            true,
            format!(
                "{} rv={}{leftover}",
                cm.metadata.name.unwrap_or_default(),
                cm.metadata.resource_version.unwrap_or_default()
            ),
        ),
        Err(error) => emit("create", false, format!("{}{leftover}", describe(&error))),
    }

    // patch-merge
    let merge = json!({ "data": { "b": "2" } });
    match configmaps
        .patch(&name, &PatchParams::default(), &Patch::Merge(&merge))
        .await
    {
        Ok(cm) => {
            let d = cm.data.unwrap_or_default();
            let ok = d.get("a").map(String::as_str) == Some("1")
                && d.get("b").map(String::as_str) == Some("2");
            emit("patch-merge", ok, format!("data={d:?}"));
        }
        Err(error) => emit("patch-merge", false, describe(&error)),
    }

    // apply (server-side apply)
    let applied = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": name, "namespace": namespace, "labels": { "sdk": SDK } },
        "data": { "c": "3" },
    });
    match configmaps
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&applied),
        )
        .await
    {
        Ok(cm) => {
            let managed = cm
                .metadata
                .managed_fields
                .unwrap_or_default()
                .into_iter()
                .any(|f| {
                    f.manager.as_deref() == Some(FIELD_MANAGER)
                        && f.operation.as_deref() == Some("Apply")
                });
            let d = cm.data.unwrap_or_default();
            let ok = managed && d.get("c").map(String::as_str) == Some("3");
            emit(
                "apply",
                ok,
                format!("data={d:?}, manager {FIELD_MANAGER} applied={managed}"),
            );
        }
        Err(error) => emit("apply", false, describe(&error)),
    }

    // watch
    let (ok, detail) = watch(&client, &namespace, &name, &label).await;
    emit("watch", ok, detail);

    // delete
    match configmaps.delete(&name, &DeleteParams::default()).await {
        Ok(_) => emit("delete", true, format!("{name} deleted")),
        Err(error) => emit("delete", false, describe(&error)),
    }

    // forbidden
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    match secrets.list(&ListParams::default()).await {
        Ok(list) => emit(
            "forbidden",
            false,
            format!("listing secrets succeeded ({} items)", list.items.len()),
        ),
        Err(kube::Error::Api(status)) => emit(
            "forbidden",
            status.code == 403,
            format!(
                "{} {}: {}",
                status.code,
                status.reason,
                head(&status.message, 160)
            ),
        ),
        Err(error) => emit("forbidden", false, describe(&error)),
    }
}

/// Opens a watch on configmaps labelled `label`, changes `name` once the
/// watch is established (its response headers arrived) and waits for the
/// MODIFIED event.
async fn watch(client: &Client, namespace: &str, name: &str, label: &str) -> (bool, String) {
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    // Start from the object's current version: only later changes are sent.
    let rv = match configmaps.get(name).await {
        Ok(cm) => cm.metadata.resource_version.unwrap_or_default(),
        Err(error) => return (false, format!("get before watch: {}", describe(&error))),
    };
    let params = WatchParams::default().labels(label).timeout(30);
    let started = Instant::now();
    // Resolves once the server answered the watch request.
    let stream = match configmaps.watch(&params, &rv).await {
        Ok(stream) => stream,
        Err(error) => return (false, describe(&error)),
    };
    let mut stream = stream.boxed();

    let writer_api = configmaps.clone();
    let target = name.to_string();
    let writer = tokio::spawn(async move {
        let patch = json!({ "data": { "watched": "yes" } });
        writer_api
            .patch(&target, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|error| describe(&error))
    });

    let deadline = tokio::time::Instant::now() + WATCH_DEADLINE;
    let mut seen: Vec<String> = Vec::new();
    let result = loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) => {
                break (
                    false,
                    format!("no MODIFIED event within 20 s; saw [{}]", seen.join(", ")),
                )
            }
            Ok(None) => {
                break (
                    false,
                    format!("watch ended without MODIFIED; saw [{}]", seen.join(", ")),
                )
            }
            Ok(Some(Err(error))) => break (false, describe(&error)),
            Ok(Some(Ok(event))) => match event {
                WatchEvent::Modified(cm) if cm.metadata.name.as_deref() == Some(name) => {
                    break (
                        true,
                        format!("MODIFIED {name} after {} ms", started.elapsed().as_millis()),
                    );
                }
                WatchEvent::Added(cm) => seen.push(format!("ADDED {:?}", cm.metadata.name)),
                WatchEvent::Modified(cm) => seen.push(format!("MODIFIED {:?}", cm.metadata.name)),
                WatchEvent::Deleted(cm) => seen.push(format!("DELETED {:?}", cm.metadata.name)),
                WatchEvent::Bookmark(_) => seen.push("BOOKMARK".to_string()),
                WatchEvent::Error(status) => {
                    break (
                        false,
                        format!(
                            "ERROR event {} {}: {}",
                            status.code, status.reason, status.message
                        ),
                    )
                }
            },
        }
    };
    match writer.await {
        Ok(Ok(())) => result,
        Ok(Err(error)) => (false, format!("modifying failed: {error}; {}", result.1)),
        Err(error) => (
            false,
            format!("modifier task failed: {error}; {}", result.1),
        ),
    }
}
