//! Teams of several people: a member invites an address, the emailed link opens a page
//! that changes nothing until the person accepts there, and accepting makes them a member
//! signed in by cookie. Links work once, for a week, and only from this host's own page.

use instanode::api::schema::{Created, InvitationSent, Invitations, TeamMembers};
use instanode_tests::mail::link_to;
use instanode_tests::{Account, HostOptions, Reply, TestHost, assert_error};
use serde_json::json;

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Invites `email`, each call its own request (an explicit idempotency key, so a repeat
/// within the fingerprint window is a new invitation, not a replay).
async fn invite(host: &TestHost, by: &Account, email: &str) -> Reply {
    let key = uuid::Uuid::new_v4().to_string();
    host.post(
        "/api/v1/team/invitations",
        Some("application/json"),
        json!({ "email": email }).to_string().into_bytes(),
        &[by.auth(), ("idempotency-key", &key)],
    )
    .await
}

fn new_email(label: &str) -> String {
    format!("{label}-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// Accepts the invitation behind `link` as the page's button does; the status and, on
/// success, the session the cookie carries.
async fn accept(
    host: &TestHost,
    link: &str,
    origin: Option<&str>,
) -> (u16, String, Option<String>) {
    let token = link.split("t=").nth(1).unwrap();
    let mut request = browser()
        .post(format!("{}/team/join", host.url))
        .form(&[("t", token)]);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    let session = answer
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .and_then(|c| c.strip_prefix("instanode_session="))
        .map(|c| c.split(';').next().unwrap().to_string());
    (status, answer.text().await.unwrap(), session)
}

async fn members(host: &TestHost, bearer: &str) -> Vec<String> {
    host.get_with(
        "/api/v1/team/members",
        &[("authorization", &format!("Bearer {bearer}"))],
    )
    .await
    .expect::<TeamMembers>(200)
    .items
    .into_iter()
    .map(|m| m.email)
    .collect()
}

#[tokio::test]
async fn an_invited_person_joins_the_team_by_the_emailed_link() {
    let host = TestHost::start(HostOptions::default()).await;
    let owner = host.new_account("owner").await;

    // A free team cannot invite.
    assert_error(
        &invite(&host, &owner, &new_email("x")).await,
        402,
        "upgrade_required",
    );
    host.set_team_tier(&owner.email, "hobby").await;
    let created: Created = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"shared-db"}"#.to_vec(),
            &[owner.auth()],
        )
        .await
        .expect(201);

    // Inviting the same address twice leaves one invitation, and only the newest link.
    let invitee = new_email("invitee");
    let first = invite(&host, &owner, &invitee)
        .await
        .expect::<InvitationSent>(201);
    let first_link = link_to(&invitee, "/team/join?t=").await;
    let second = invite(&host, &owner, &invitee)
        .await
        .expect::<InvitationSent>(201);
    let link = link_to(&invitee, "/team/join?t=").await;
    assert_ne!(link, first_link, "a second message with a new link");
    let waiting = host
        .get_with("/api/v1/team/invitations", &[owner.auth()])
        .await
        .expect::<Invitations>(200);
    assert_eq!(waiting.items.len(), 1);
    assert_eq!(waiting.items[0].id, second.invitation.id);
    assert_ne!(first.invitation.id, second.invitation.id);
    assert_eq!(accept(&host, &first_link, None).await.0, 410);

    // Another team neither sees nor revokes it.
    let stranger = host.new_account("stranger").await;
    host.set_team_tier(&stranger.email, "hobby").await;
    let theirs = host
        .get_with("/api/v1/team/invitations", &[stranger.auth()])
        .await
        .expect::<Invitations>(200);
    assert!(theirs.items.is_empty());
    let id = second.invitation.id;
    let refused = host
        .delete_with(
            &format!("/api/v1/team/invitations/{id}"),
            &[stranger.auth()],
        )
        .await;
    assert_error(&refused, 404, "invitation_not_found");

    // Opening the link changes nothing: a page with the team and a button.
    let page = browser()
        .get(format!("{}{link}", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Join the team") && page.contains(&owner.email),
        "{page}"
    );
    assert_eq!(
        members(&host, &owner.token).await,
        vec![owner.email.clone()]
    );

    // Another site's page cannot accept for the person.
    let (status, body, _) = accept(&host, &link, Some("https://evil.example")).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(members(&host, &owner.token).await.len(), 1);

    // The button: a member, signed in, who sees the team's resources.
    let (status, body, session) = accept(&host, &link, Some(&host.url)).await;
    assert_eq!(status, 303, "{body}");
    let session = session.expect("a session cookie");
    let both = members(&host, &session).await;
    assert!(
        both.contains(&owner.email) && both.contains(&invitee),
        "{both:?}"
    );
    let shared = host
        .get_with(
            &format!("/api/v1/resources/{}", created.token),
            &[("authorization", &format!("Bearer {session}"))],
        )
        .await;
    assert_eq!(shared.status, 200, "{}", shared.body);
    // Used once.
    assert_eq!(accept(&host, &link, None).await.0, 410);
    assert_error(
        &invite(&host, &owner, &invitee).await,
        409,
        "already_member",
    );
}

#[tokio::test]
async fn joining_never_strands_resources_and_old_keys_stay_behind() {
    let host = TestHost::start(HostOptions::default()).await;
    let owner = host.new_account("owner").await;
    host.set_team_tier(&owner.email, "pro").await;

    // Someone alone in their own team, with a database and an API key there.
    let loner = host.new_account("loner").await;
    let theirs: Created = host
        .post(
            "/db/new",
            Some("application/json"),
            br#"{"name":"mine"}"#.to_vec(),
            &[loner.auth()],
        )
        .await
        .expect(201);
    let key = host.api_key(&loner, "laptop").await;
    invite(&host, &owner, &loner.email)
        .await
        .expect::<InvitationSent>(201);
    let link = link_to(&loner.email, "/team/join?t=").await;

    // Joining would leave the database with nobody: refused, and the link still works.
    let (status, body, _) = accept(&host, &link, None).await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("team_has_resources"), "{body}");
    host.delete_with(
        &format!("/api/v1/resources/{}", theirs.token),
        &[loner.auth()],
    )
    .await;
    let (status, body, _) = accept(&host, &link, None).await;
    assert_eq!(status, 303, "{body}");

    // The key made in the old team does not follow its user into the new one.
    let with_key = host
        .get_with("/api/v1/resources", &[("authorization", &key.bearer)])
        .await;
    assert_eq!(with_key.status, 401, "{}", with_key.body);
    assert!(members(&host, &owner.token).await.contains(&loner.email));
}

#[tokio::test]
async fn revoked_and_expired_invitations_open_nothing() {
    let host = TestHost::start(HostOptions::default()).await;
    let owner = host.new_account("owner").await;
    host.set_team_tier(&owner.email, "hobby").await;

    let revoked = new_email("revoked");
    let sent = invite(&host, &owner, &revoked)
        .await
        .expect::<InvitationSent>(201);
    let link = link_to(&revoked, "/team/join?t=").await;
    let id = sent.invitation.id;
    host.delete_with(&format!("/api/v1/team/invitations/{id}"), &[owner.auth()])
        .await
        .expect::<serde_json::Value>(200);
    let page = browser()
        .get(format!("{}{link}", host.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("invitation_invalid"));
    assert_eq!(accept(&host, &link, None).await.0, 410);

    // A key, since the owner's session ends before the invitation does.
    let key = host.api_key(&owner, "checks").await;
    let late = new_email("late");
    invite(&host, &owner, &late)
        .await
        .expect::<InvitationSent>(201);
    let link = link_to(&late, "/team/join?t=").await;
    host.advance_clock(8 * 24 * 3600).await;
    assert_eq!(accept(&host, &link, None).await.0, 410);
    assert_eq!(members(&host, &key.token).await, vec![owner.email.clone()]);
    let waiting = host
        .get_with("/api/v1/team/invitations", &[key.auth()])
        .await
        .expect::<Invitations>(200);
    assert!(waiting.items.is_empty(), "{waiting:?}");
}
