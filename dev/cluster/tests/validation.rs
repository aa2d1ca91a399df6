//! Admission of custom resources like the real API server (through
//! `tipoff_crds::validation`): schema errors, CEL rules and transition rules
//! with 422 Invalid bodies, pruning, `fieldValidation=Strict` and defaults.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kube::Api;
use kube::api::{DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

fn invalid(err: kube::Error) -> (String, Vec<(String, String)>) {
    match err {
        kube::Error::Api(status) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (422, "Invalid"),
                "{status:?}"
            );
            (status.message.clone(), Vec::new())
        }
        other => panic!("expected 422, got {other:?}"),
    }
}

#[tokio::test]
async fn cel_rule_violation_is_422_with_the_rule_message_and_causes() {
    let cluster = start().await;
    let c = client(&cluster);
    install_widgets(&c).await;
    let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "big"}, "spec": {"size": 11}});
    let (code, status) = raw(
        &cluster,
        "POST",
        "/apis/example.com/v1/namespaces/default/widgets",
        Some(&body),
        "application/json",
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(
        status["message"],
        r#"The Widget "big" is invalid: spec: Invalid value: "object": size must be at most 10"#
    );
    assert_eq!(status["details"]["name"], "big");
    assert_eq!(status["details"]["kind"], "Widget");
    assert_eq!(status["details"]["group"], "example.com");
    assert_eq!(status["details"]["causes"][0]["field"], "spec");
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueInvalid"
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn schema_errors_required_enum_and_length() {
    let cluster = start().await;
    let c = client(&cluster);
    let ar = install_widgets(&c).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(c, "default", &ar);
    let create = |spec: Value| {
        let widgets = widgets.clone();
        async move {
            let object: DynamicObject = serde_json::from_value(json!({
                "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": spec})).unwrap();
            widgets.create(&PostParams::default(), &object).await
        }
    };
    let (message, _) = invalid(create(json!({"color": "red"})).await.unwrap_err());
    assert_eq!(
        message,
        r#"The Widget "w" is invalid: spec.size: Required value"#
    );
    let (message, _) = invalid(
        create(json!({"size": 1, "color": "purple"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        message,
        r#"The Widget "w" is invalid: spec.color: Unsupported value: "purple": supported values: "red", "green", "blue""#
    );
    let (message, _) = invalid(create(json!({"size": -1})).await.unwrap_err());
    assert!(
        message.starts_with(r#"The Widget "w" is invalid: spec.size: Invalid value: -1"#),
        "{message}"
    );
    let (message, _) = invalid(
        create(json!({"size": 1, "mode": "much-too-long"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        message,
        r#"The Widget "w" is invalid: spec.mode: Too long: may not be more than 8 bytes"#
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn transition_rule_sees_old_self() {
    let cluster = start().await;
    let c = client(&cluster);
    let ar = install_widgets(&c).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(c, "default", &ar);
    let mut w = widget("t", 1);
    w.data["spec"]["color"] = json!("red");
    widgets.create(&PostParams::default(), &w).await.unwrap();
    // Changing size is fine; changing color is not.
    widgets
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    let err = widgets
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"color": "blue"}})),
        )
        .await
        .unwrap_err();
    let (message, _) = invalid(err);
    assert_eq!(
        message,
        r#"The Widget "t" is invalid: spec.color: Invalid value: "string": color is immutable"#
    );
    cluster.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_are_pruned_or_rejected_when_strict_and_defaults_apply() {
    let cluster = start().await;
    let c = client(&cluster);
    install_widgets(&c).await;
    let body = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "p"}, "spec": {"size": 1, "extra": true}});
    let path = "/apis/example.com/v1/namespaces/default/widgets";
    let (code, created) = raw(&cluster, "POST", path, Some(&body), "application/json").await;
    assert_eq!(code, 201, "{created}");
    assert_eq!(
        created["spec"],
        json!({"size": 1, "mode": "fast"}),
        "pruned and defaulted"
    );
    let mut strict_body = body.clone();
    strict_body["metadata"]["name"] = json!("q");
    let (code, status) = raw(
        &cluster,
        "POST",
        &format!("{path}?fieldValidation=Strict"),
        Some(&strict_body),
        "application/json",
    )
    .await;
    assert_eq!(code, 422);
    assert_eq!(
        status["message"],
        r#"The Widget "q" is invalid: unknown field "spec.extra""#
    );
    cluster.shutdown().await;
}
