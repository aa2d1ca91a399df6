//! RBAC enforcement for ServiceAccount tokens, with the real `kube` client and
//! the real `/usr/bin/kubectl`: Roles, ClusterRoles, both kinds of binding,
//! verbs, subresources, `resourceNames`, 403 bodies, TokenRequest,
//! impersonation, `kubectl auth can-i` (protobuf access reviews), and name
//! validation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use common::*;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, Error};
use serde_json::json;
use tipoff_devcluster::DevCluster;

const KUBECTL: &str = "/usr/bin/kubectl";

const RBAC: &str = r#"
apiVersion: v1
kind: ServiceAccount
metadata: {name: reader, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: reader, namespace: default}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [settings]
  verbs: [get, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: reader, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}
subjects:
- {kind: ServiceAccount, name: reader, namespace: default}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: namespace-viewer}
rules:
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: reader-namespaces}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: namespace-viewer}
subjects:
- {kind: ServiceAccount, name: reader, namespace: default}
"#;

fn kubectl(dir: &std::path::Path, kubeconfig: &str, args: &[&str]) -> (bool, String, String) {
    let path = dir.join(format!("kubeconfig-{}", kubeconfig.len()));
    std::fs::write(&path, kubeconfig).unwrap();
    let output = std::process::Command::new(KUBECTL)
        .args(args)
        .env("KUBECONFIG", &path)
        .env("HOME", dir)
        .stdin(Stdio::null())
        .output()
        .expect("kubectl ran");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A cluster with [`RBAC`] applied by the admin (with kubectl) and a client
/// authenticated as the `reader` ServiceAccount.
async fn setup() -> (DevCluster, tempfile::TempDir, Client) {
    let cluster = start().await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = dir.path().join("rbac.yaml");
    std::fs::write(&manifest, RBAC).unwrap();
    let (ok, out, err) = kubectl(
        dir.path(),
        &cluster.kubeconfig(),
        &["apply", "-f", manifest.to_str().unwrap()],
    );
    assert!(ok, "{out}{err}");
    let token = cluster.service_account_token("default", "reader").unwrap();
    let mut config = kube::Config::new(cluster.url().parse().unwrap());
    config.auth_info.token = Some(token.into());
    let _ = rustls::crypto::ring::default_provider().install_default();
    (cluster, dir, Client::try_from(config).unwrap())
}

fn forbidden(result: Result<impl std::fmt::Debug, Error>) -> kube::core::Status {
    match result {
        Err(Error::Api(status)) if status.code == 403 => *status,
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_gets_exactly_what_its_role_grants() {
    let (cluster, _dir, reader) = setup().await;
    let admin = client(&cluster);
    let admin_pods: Api<Pod> = Api::namespaced(admin.clone(), "default");
    admin_pods
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let maps: Api<ConfigMap> = Api::namespaced(admin.clone(), "default");
    for name in ["settings", "other"] {
        maps.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
    }

    // Verbs and subresources.
    let pods: Api<Pod> = Api::namespaced(reader.clone(), "default");
    assert_eq!(
        pods.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    pods.get("p").await.unwrap();
    let status = forbidden(pods.delete("p", &DeleteParams::default()).await);
    assert_eq!(status.reason, "Forbidden");
    assert_eq!(
        status.message,
        r#"pods "p" is forbidden: User "system:serviceaccount:default:reader" cannot delete resource "pods" in API group "" in the namespace "default""#
    );
    let patch = Patch::Merge(json!({"status": {"message": "hi"}}));
    pods.patch_status("p", &PatchParams::default(), &patch)
        .await
        .unwrap();
    let status = forbidden(pods.patch("p", &PatchParams::default(), &patch).await);
    assert!(
        status.message.contains(r#"cannot patch resource "pods""#),
        "{}",
        status.message
    );
    let status = forbidden(pods.logs("p", &Default::default()).await);
    assert!(
        status.message.contains(r#"cannot get resource "pods/log""#),
        "{}",
        status.message
    );

    // A RoleBinding grants in its namespace only.
    let elsewhere: Api<Pod> = Api::namespaced(reader.clone(), "kube-system");
    let status = forbidden(elsewhere.list(&ListParams::default()).await);
    assert_eq!(
        status.message,
        r#"pods is forbidden: User "system:serviceaccount:default:reader" cannot list resource "pods" in API group "" in the namespace "kube-system""#
    );
    let everywhere: Api<Pod> = Api::all(reader.clone());
    forbidden(everywhere.list(&ListParams::default()).await);

    // resourceNames: the named object only, and never list or create.
    let reader_maps: Api<ConfigMap> = Api::namespaced(reader.clone(), "default");
    reader_maps.get("settings").await.unwrap();
    forbidden(reader_maps.get("other").await);
    forbidden(reader_maps.list(&ListParams::default()).await);
    forbidden(
        reader_maps
            .create(
                &PostParams::default(),
                &serde_json::from_value(json!({"metadata": {"name": "settings2"}})).unwrap(),
            )
            .await,
    );
    reader_maps
        .delete("settings", &DeleteParams::default())
        .await
        .unwrap();

    // A ClusterRoleBinding grants cluster-scoped resources.
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(reader.clone());
    namespaces.get("default").await.unwrap();
    let status = forbidden(namespaces.delete("default", &DeleteParams::default()).await);
    assert!(
        status.message.ends_with("at the cluster scope"),
        "{}",
        status.message
    );

    // Discovery is allowed to every authenticated user (system:discovery).
    reader.list_api_groups().await.unwrap();

    // The decision record says what was used and what was refused.
    let decisions = cluster.authorization_decisions();
    let user = "system:serviceaccount:default:reader";
    let seen = |verb: &str, resource: &str, sub: &str, allowed: bool| {
        decisions.iter().any(|(d, _)| {
            d.user == user
                && d.verb == verb
                && d.resource == resource
                && d.subresource == sub
                && d.allowed == allowed
        })
    };
    assert!(seen("patch", "pods", "status", true));
    assert!(seen("delete", "pods", "", false));
    assert!(seen("get", "pods", "log", false));
    assert!(!seen("create", "pods", "", true));

    // A SubjectAccessReview (the admin asking about the reader) answers as the authorizer.
    let reviews: Api<k8s_openapi::api::authorization::v1::SubjectAccessReview> =
        Api::all(admin.clone());
    let ask = |verb: &str, subresource: &str| {
        serde_json::from_value::<k8s_openapi::api::authorization::v1::SubjectAccessReview>(json!({
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {"namespace": "default", "verb": verb, "resource": "pods", "subresource": subresource},
            }
        }))
        .unwrap()
    };
    for (verb, sub, allowed) in [
        ("patch", "status", true),
        ("patch", "", false),
        ("watch", "", true),
    ] {
        let answer = reviews
            .create(&PostParams::default(), &ask(verb, sub))
            .await
            .unwrap();
        assert_eq!(answer.status.unwrap().allowed, allowed, "{verb} pods/{sub}");
    }
    // The reader may not ask about others (no create on subjectaccessreviews).
    let theirs: Api<k8s_openapi::api::authorization::v1::SubjectAccessReview> =
        Api::all(reader.clone());
    forbidden(theirs.create(&PostParams::default(), &ask("get", "")).await);

    // The admin (no credentials) is never refused.
    admin_pods
        .delete("p", &DeleteParams::default())
        .await
        .unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_tokens_are_401_and_deleted_accounts_lose_access() {
    let (cluster, _dir, reader) = setup().await;
    let mut config = kube::Config::new(cluster.url().parse().unwrap());
    config.auth_info.token = Some("not-a-token".to_string().into());
    let stranger = Client::try_from(config).unwrap();
    let pods: Api<Pod> = Api::namespaced(stranger, "default");
    match pods.list(&ListParams::default()).await {
        Err(Error::Api(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (401, "Unauthorized"))
        }
        other => panic!("expected 401, got {other:?}"),
    }
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(client(&cluster), "default");
    accounts
        .delete("reader", &DeleteParams::default())
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(reader, "default");
    match pods.list(&ListParams::default()).await {
        Err(Error::Api(status)) => assert_eq!(status.code, 401),
        other => panic!("expected 401, got {other:?}"),
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_token_and_auth_can_i_work_as_on_a_real_cluster() {
    let (cluster, dir, _reader) = setup().await;
    let admin = cluster.kubeconfig();
    let dir = dir.path();
    let sa = "system:serviceaccount:default:reader";

    // `kubectl auth can-i` sends SelfSubjectAccessReviews as protobuf.
    let can_i = |args: &[&str]| {
        let mut all = vec!["auth", "can-i"];
        all.extend_from_slice(args);
        let (_, out, err) = kubectl(dir, &admin, &all);
        assert!(out.trim() == "yes" || out.trim() == "no", "{out}{err}");
        out.trim().to_string()
    };
    assert_eq!(can_i(&["delete", "pods"]), "yes");
    assert_eq!(can_i(&["--as", sa, "list", "pods"]), "yes");
    assert_eq!(
        can_i(&["--as", sa, "patch", "pods", "--subresource=status"]),
        "yes"
    );
    assert_eq!(can_i(&["--as", sa, "patch", "pods"]), "no");
    assert_eq!(can_i(&["--as", sa, "get", "configmaps/settings"]), "yes");
    assert_eq!(can_i(&["--as", sa, "get", "configmaps/other"]), "no");
    assert_eq!(
        can_i(&["--as", sa, "list", "pods", "-n", "kube-system"]),
        "no"
    );
    assert_eq!(can_i(&["--as", sa, "get", "namespaces"]), "yes");

    // `kubectl create token` (a protobuf TokenRequest); the token authenticates as the
    // account. (kubectl itself never sends a bearer token over plain HTTP, so kubectl
    // acts as the account with `--as`; the kube client sends it.)
    let (ok, token, err) = kubectl(dir, &admin, &["create", "token", "reader"]);
    assert!(ok, "{err}");
    let mut config = kube::Config::new(cluster.url().parse().unwrap());
    config.auth_info.token = Some(token.trim().to_string().into());
    let pods: Api<Pod> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    pods.list(&ListParams::default()).await.unwrap();
    forbidden(pods.delete("p", &DeleteParams::default()).await);
    let (ok, _, err) = kubectl(dir, &admin, &["delete", "namespace", "default", "--as", sa]);
    assert!(!ok);
    assert!(
        err.contains(r#"Error from server (Forbidden): namespaces "default" is forbidden: User "system:serviceaccount:default:reader" cannot delete resource "namespaces" in API group "" at the cluster scope"#),
        "{err}"
    );

    // `--list` (a SelfSubjectRulesReview) shows the Role's rules.
    let (ok, out, err) = kubectl(dir, &admin, &["auth", "can-i", "--list", "--as", sa]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("pods/status ") && l.contains("[patch]")),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("configmaps ") && l.contains("[settings]")),
        "{out}"
    );

    // Impersonation needs the `impersonate` verb: the reader has none.
    let mut config = kube::Config::new(cluster.url().parse().unwrap());
    config.auth_info.token = Some(token.trim().to_string().into());
    config.auth_info.impersonate = Some("someone".into());
    let pods: Api<Pod> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    let status = forbidden(pods.list(&ListParams::default()).await);
    assert!(
        status
            .message
            .contains(r#"cannot impersonate resource "users""#),
        "{}",
        status.message
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_names_are_validated_like_a_real_api_server() {
    let cluster = start().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = cluster.kubeconfig();
    // `kubectl create namespace` sends protobuf, which this server reads only for
    // reviews and TokenRequests; `kubectl apply` sends JSON.
    let apply = |kind: &str, name: &str| {
        let file = dir.path().join("object.yaml");
        std::fs::write(
            &file,
            format!(
                "apiVersion: v1\nkind: {kind}\nmetadata: {{name: {name}, namespace: default}}\n"
            ),
        )
        .unwrap();
        kubectl(dir.path(), &admin, &["apply", "-f", file.to_str().unwrap()])
    };
    let (ok, _, err) = apply("Namespace", "Team_A");
    assert!(!ok);
    assert!(
        err.contains(r#"Namespace "Team_A" is invalid: metadata.name: Invalid value: "Team_A": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"#),
        "{err}"
    );
    let (ok, _, err) = apply("Namespace", "team.a");
    assert!(!ok);
    assert!(err.contains("a lowercase RFC 1123 label"), "{err}");
    let (ok, _, err) = apply("ConfigMap", "a_b");
    assert!(!ok);
    assert!(err.contains(r#"ConfigMap "a_b" is invalid: metadata.name: Invalid value: "a_b": a lowercase RFC 1123 subdomain"#), "{err}");
    let (ok, out, err) = apply("ConfigMap", "a.b");
    assert!(ok, "{out}{err}");
    let (ok, _, err) = apply("Namespace", &"a".repeat(64));
    assert!(!ok);
    assert!(err.contains("must be no more than 63 characters"), "{err}");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_references_need_delete_and_blocking_ones_need_the_owners_finalizers() {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let cluster = start().await;
    let admin = client(&cluster);
    let accounts: Api<k8s_openapi::api::core::v1::ServiceAccount> =
        Api::namespaced(admin.clone(), "default");
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "writer"}})).unwrap(),
        )
        .await
        .unwrap();
    let roles: Api<Role> = Api::namespaced(admin.clone(), "default");
    let role = |extra: Vec<serde_json::Value>| {
        let mut rules = vec![
            json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "update", "patch"]}),
        ];
        rules.extend(extra);
        serde_json::from_value::<Role>(json!({"metadata": {"name": "writer"}, "rules": rules}))
            .unwrap()
    };
    roles
        .create(&PostParams::default(), &role(vec![]))
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "writer"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "writer"},
                "subjects": [{"kind": "ServiceAccount", "name": "writer", "namespace": "default"}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let owner = Api::<Pod>::namespaced(admin.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "owner"},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let uid = owner.metadata.uid.unwrap();
    let owned = |name: &str, block: bool| -> ConfigMap {
        serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{
            "apiVersion": "v1", "kind": "Pod", "name": "owner", "uid": uid, "blockOwnerDeletion": block,
        }]}}))
        .unwrap()
    };
    let mut config = kube::Config::new(cluster.url().parse().unwrap());
    config.auth_info.token = Some(
        cluster
            .service_account_token("default", "writer")
            .unwrap()
            .into(),
    );
    let maps: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");

    // Creating with a plain owner reference needs nothing more.
    maps.create(&PostParams::default(), &owned("plain", false))
        .await
        .unwrap();
    // Blocking the owner's deletion needs `update` on its finalizers.
    let status = forbidden(
        maps.create(&PostParams::default(), &owned("blocking", true))
            .await,
    );
    assert_eq!(
        status.message,
        r#"configmaps "blocking" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: User "system:serviceaccount:default:writer" cannot update resource "pods/finalizers" in API group "" in the namespace "default", <nil>"#
    );
    // Changing the references of an existing object needs `delete` on it.
    let status = forbidden(
        maps.patch(
            "plain",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"ownerReferences": null}})),
        )
        .await,
    );
    assert!(
        status
            .message
            .contains("cannot set an ownerRef on a resource you can't delete"),
        "{}",
        status.message
    );
    maps.patch(
        "plain",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v"}})),
    )
    .await
    .unwrap();

    roles
        .replace(
            "writer",
            &PostParams::default(),
            &Role {
                metadata: roles.get("writer").await.unwrap().metadata,
                ..role(vec![
                    json!({"apiGroups": [""], "resources": ["pods/finalizers"], "verbs": ["update"]}),
                    json!({"apiGroups": [""], "resources": ["configmaps"], "verbs": ["delete"]}),
                ])
            },
        )
        .await
        .unwrap();
    maps.create(&PostParams::default(), &owned("blocking", true))
        .await
        .unwrap();
    maps.patch(
        "plain",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"ownerReferences": null}})),
    )
    .await
    .unwrap();
    // A server-side apply that creates needs `create` (granted here) as well as `patch`.
    maps.patch(
        "applied",
        &PatchParams::apply("test"),
        &Patch::Apply(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "applied"}}),
        ),
    )
    .await
    .unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_side_apply_that_creates_needs_create_as_well_as_patch() {
    use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
    let cluster = start().await;
    let admin = client(&cluster);
    Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(admin.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "applier"}})).unwrap(),
        )
        .await
        .unwrap();
    Api::<Role>::namespaced(admin.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "applier"}, "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["patch"]}
            ]}))
            .unwrap(),
        )
        .await
        .unwrap();
    Api::<RoleBinding>::namespaced(admin.clone(), "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "applier"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "applier"},
                "subjects": [{"kind": "ServiceAccount", "name": "applier", "namespace": "default"}],
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let mut config = kube::Config::new(cluster.url().parse().unwrap());
    config.auth_info.token = Some(
        cluster
            .service_account_token("default", "applier")
            .unwrap()
            .into(),
    );
    let maps: Api<ConfigMap> = Api::namespaced(Client::try_from(config).unwrap(), "default");
    let apply = |value: &str| {
        Patch::Apply(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "applied"}, "data": {"k": value},
        }))
    };
    let status = forbidden(
        maps.patch("applied", &PatchParams::apply("test"), &apply("1"))
            .await,
    );
    assert!(
        status
            .message
            .contains(r#"cannot create resource "configmaps""#),
        "{}",
        status.message
    );
    // Once it exists, applying is a patch.
    Api::<ConfigMap>::namespaced(admin, "default")
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "applied"}})).unwrap(),
        )
        .await
        .unwrap();
    maps.patch("applied", &PatchParams::apply("test"), &apply("2"))
        .await
        .unwrap();
    cluster.shutdown().await;
}
