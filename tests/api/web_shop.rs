//! Ordering in the browser (`src/web/shop.rs`): the store page's cart, the order page, paying,
//! reviews with stars and hashtags, and the hashtag's page. The rules are the API's
//! (`orders::checkout`, `catalog::reviews::write`); these tests check the pages' answers.

use ballpark::config::Config;
use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::orders::{fast_jobs, open_shop, wait_for, Shop};
use crate::web_client::{Browser, Page};

/// The value of the hidden `name` field of the page's first form that has one.
fn hidden(page: &Page, name: &str) -> String {
    page.html
        .split(&format!(r#"name="{name}" value=""#))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the page has a {name} field: {}", page.html))
        .to_string()
}

/// The fan of `open_shop`, signed in through the login form, reading English pages.
async fn fan_browser<'a>(app: &'a TestApp) -> Browser<'a> {
    let mut browser = Browser::new(app);
    browser.accept_language = Some("en".into());
    let login = browser.login("fan@example.com", "password123").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.html);
    browser
}

/// Submits the store page's cart with `quantities` (menu item id, typed quantity); the
/// key and CSRF token come from `page`, as a browser would send them.
async fn order_from(
    browser: &mut Browser<'_>,
    shop: &Shop,
    page: &Page,
    quantities: &[(i64, &str)],
) -> Page {
    let csrf = page.csrf();
    let key = hidden(page, "key");
    let names: Vec<String> = quantities
        .iter()
        .map(|(id, _)| format!("qty_{id}"))
        .collect();
    let mut fields: Vec<(&str, &str)> = vec![("csrf", &csrf), ("key", &key)];
    for (name, (_, quantity)) in names.iter().zip(quantities) {
        fields.push((name, quantity));
    }
    browser
        .post(&format!("/stores/{}/order", shop.store_id), &fields)
        .await
}

async fn ordering_from_the_cart_shows_the_order_page_and_paying_marks_it_paid(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut browser = fan_browser(&app).await;
    let store = browser.get(&format!("/stores/{}", shop.store_id)).await;
    assert_eq!(store.status, StatusCode::OK);
    assert!(store
        .html
        .contains(&format!("name=\"qty_{}\"", shop.hotdog)));

    // Act
    let placed = order_from(
        &mut browser,
        &shop,
        &store,
        &[(shop.hotdog, "2"), (shop.beer, "1")],
    )
    .await;
    let order_path = placed.location().to_string();
    let order = browser.get(&order_path).await;
    let paid = browser
        .post(&format!("{order_path}/pay"), &[("csrf", &order.csrf())])
        .await;
    let after = browser.get(&order_path).await;

    // Assert
    assert_eq!(placed.status, StatusCode::SEE_OTHER, "{}", placed.html);
    assert!(order_path.starts_with("/orders/"), "{order_path}");
    assert_eq!(order.status, StatusCode::OK);
    assert_eq!(order.headers["cache-control"], "no-store");
    assert!(order.html.contains("10,500원"), "{}", order.html);
    assert!(order.html.contains("Placed, awaiting payment"));
    assert!(order.html.contains("data-live=\"1\""));
    assert_eq!(paid.status, StatusCode::SEE_OTHER, "{}", paid.html);
    assert_eq!(paid.location(), order_path);
    assert!(
        !after.html.contains("Placed, awaiting payment"),
        "{}",
        after.html
    );
    assert!(!after.html.contains(&format!("action=\"{order_path}/pay\"")));
    assert_eq!(shop.stock(shop.hotdog).await, 3);
    let mine = browser.get("/orders").await;
    assert!(
        mine.html.contains(&format!("href=\"{order_path}\"")),
        "{}",
        mine.html
    );
}

async fn a_bad_cart_shows_the_store_page_again_with_its_problem_and_status(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut browser = fan_browser(&app).await;
    let store = browser.get(&format!("/stores/{}", shop.store_id)).await;

    // Act
    let empty = order_from(&mut browser, &shop, &store, &[(shop.hotdog, "")]).await;
    let words = order_from(&mut browser, &shop, &store, &[(shop.hotdog, "two")]).await;
    let too_many = order_from(&mut browser, &shop, &store, &[(shop.beer, "21")]).await;
    let sold_out = order_from(&mut browser, &shop, &store, &[(shop.hotdog, "6")]).await;
    let qty = format!("qty_{}", shop.beer);
    let no_key = browser
        .post(
            &format!("/stores/{}/order", shop.store_id),
            &[("csrf", &store.csrf()), (&qty, "1")],
        )
        .await;
    let no_store = browser
        .post(
            "/stores/999999/order",
            &[("csrf", &store.csrf()), ("key", "k"), (&qty, "1")],
        )
        .await;

    // Assert
    for page in [&empty, &words, &too_many] {
        assert_eq!(
            page.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            page.html
        );
        assert!(page.html.contains("class=\"errors\""), "{}", page.html);
    }
    assert!(too_many.html.contains("value=\"21\""), "{}", too_many.html);
    assert_eq!(sold_out.status, StatusCode::CONFLICT, "{}", sold_out.html);
    assert!(
        sold_out.html.contains("cannot be ordered now"),
        "{}",
        sold_out.html
    );
    assert!(sold_out.html.contains("only 5 left"), "{}", sold_out.html);
    assert_eq!(no_key.status, StatusCode::BAD_REQUEST, "{}", no_key.html);
    assert!(
        no_key.html.contains("The order form is out of date"),
        "{}",
        no_key.html
    );
    assert_eq!(no_store.status, StatusCode::NOT_FOUND, "{}", no_store.html);
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
}

async fn submitting_the_same_cart_page_twice_places_one_order(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut browser = fan_browser(&app).await;
    let store = browser.get(&format!("/stores/{}", shop.store_id)).await;

    // Act
    let first = order_from(&mut browser, &shop, &store, &[(shop.beer, "1")]).await;
    let second = order_from(&mut browser, &shop, &store, &[(shop.beer, "1")]).await;

    // Assert
    assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.html);
    assert_eq!(second.status, StatusCode::SEE_OTHER, "{}", second.html);
    assert_eq!(first.location(), second.location());
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(shop.stock(shop.beer).await, 99);
}

async fn someone_elses_order_page_is_not_found_and_a_visitor_must_log_in(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut fan = fan_browser(&app).await;
    let store = fan.get(&format!("/stores/{}", shop.store_id)).await;
    let placed = order_from(&mut fan, &shop, &store, &[(shop.beer, "1")]).await;
    let order_path = placed.location().to_string();
    let mut other = Browser::new(&app);
    other.register("someone_else").await;
    let mut visitor = Browser::new(&app);

    // Act
    let theirs = other.get(&order_path).await;
    let csrf = other.get("/orders").await.csrf();
    let pay_theirs = other
        .post(&format!("{order_path}/pay"), &[("csrf", &csrf)])
        .await;
    let anonymous = visitor.get(&order_path).await;

    // Assert
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(pay_theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
    assert!(anonymous.location().starts_with("/login"));
}

async fn forms_without_the_csrf_token_are_refused(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut browser = fan_browser(&app).await;
    let store = browser.get(&format!("/stores/{}", shop.store_id)).await;
    let key = hidden(&store, "key");
    let qty = format!("qty_{}", shop.beer);

    // Act
    let order = browser
        .post(
            &format!("/stores/{}/order", shop.store_id),
            &[("key", &key), (&qty, "1")],
        )
        .await;
    let review = browser
        .post(
            &format!("/stores/{}/reviews", shop.store_id),
            &[("rating", "5"), ("body", "#맛집")],
        )
        .await;

    // Assert
    assert_eq!(order.status, StatusCode::FORBIDDEN);
    assert_eq!(review.status, StatusCode::FORBIDDEN);
    assert_eq!(shop.count("SELECT COUNT(*) FROM orders").await, 0);
    assert_eq!(shop.count("SELECT COUNT(*) FROM reviews").await, 0);
}

async fn a_review_with_a_hashtag_shows_on_the_store_page_and_the_tags_page(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut browser = fan_browser(&app).await;
    let store_path = format!("/stores/{}", shop.store_id);
    let store = browser.get(&store_path).await;

    // Act
    let no_stars = browser
        .post(
            &format!("{store_path}/reviews"),
            &[("csrf", &store.csrf()), ("body", "줄이 짧아요 #치맥")],
        )
        .await;
    let written = browser
        .post(
            &format!("{store_path}/reviews"),
            &[
                ("csrf", &store.csrf()),
                ("rating", "4"),
                ("body", "줄이 짧아요 #치맥"),
            ],
        )
        .await;
    let shown = browser.get(&store_path).await;
    let tagged = browser.get("/reviews?tag=%EC%B9%98%EB%A7%A5").await;
    let bad_tag = browser.get("/reviews?tag=no%20spaces").await;

    // Assert
    assert_eq!(
        no_stars.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        no_stars.html
    );
    assert!(
        no_stars.html.contains("줄이 짧아요 #치맥</textarea>"),
        "{}",
        no_stars.html
    );
    assert_eq!(written.status, StatusCode::SEE_OTHER, "{}", written.html);
    assert_eq!(written.location(), format!("{store_path}#reviews"));
    let link = r#"<a class="hashtag" href="/reviews?tag=%EC%B9%98%EB%A7%A5">#치맥</a>"#;
    assert!(shown.html.contains(link), "{}", shown.html);
    assert!(
        shown.html.contains("aria-label=\"4 out of 5 stars\""),
        "{}",
        shown.html
    );
    assert!(shown.html.contains("★★★★☆"));
    assert!(
        shown.html.contains("value=\"4\" checked") && shown.html.contains("#치맥</textarea>"),
        "writing again starts from the fan's review: {}",
        shown.html
    );
    assert!(
        shown.html.contains("★ 4.0"),
        "the store's rating: {}",
        shown.html
    );
    assert_eq!(tagged.status, StatusCode::OK);
    assert!(tagged.html.contains("줄이 짧아요"), "{}", tagged.html);
    assert!(tagged.html.contains(&format!("href=\"{store_path}\"")));
    assert_eq!(bad_tag.status, StatusCode::BAD_REQUEST, "{}", bad_tag.html);
}

fn declining(config: &mut Config) {
    fast_jobs(config);
    config.sim_payment_mode = "decline".into();
}

async fn a_declined_payment_shows_the_order_page_with_402_and_the_reason(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut browser = fan_browser(&app).await;
    let store = browser.get(&format!("/stores/{}", shop.store_id)).await;
    let placed = order_from(&mut browser, &shop, &store, &[(shop.hotdog, "1")]).await;
    let order_path = placed.location().to_string();
    let order = browser.get(&order_path).await;

    // Act
    let paid = browser
        .post(&format!("{order_path}/pay"), &[("csrf", &order.csrf())])
        .await;

    // Assert
    assert_eq!(paid.status, StatusCode::PAYMENT_REQUIRED, "{}", paid.html);
    assert!(
        paid.html.contains("The payment was declined."),
        "{}",
        paid.html
    );
    assert!(
        paid.html.contains("card declined (simulated)"),
        "{}",
        paid.html
    );
    assert!(paid.html.contains("Payment failed"), "{}", paid.html);
    assert_eq!(shop.stock(shop.hotdog).await, 5);
}

fn quick_vendor(config: &mut Config) {
    fast_jobs(config);
    config.sim_vendor_accept_delay_ms = 20;
    config.sim_vendor_step_delay_ms = 20;
}

async fn the_order_page_shows_the_pickup_number_once_the_vendor_accepted(app: TestApp) {
    // Arrange: ordered and paid in the browser; the simulated vendor takes it from there.
    let shop = open_shop(&app).await;
    let mut browser = fan_browser(&app).await;
    let store = browser.get(&format!("/stores/{}", shop.store_id)).await;
    let placed = order_from(&mut browser, &shop, &store, &[(shop.beer, "2")]).await;
    let order_path = placed.location().to_string();
    let unpaid = browser.get(&order_path).await;
    let paid = browser
        .post(&format!("{order_path}/pay"), &[("csrf", &unpaid.csrf())])
        .await;
    assert_eq!(paid.status, StatusCode::SEE_OTHER, "{}", paid.html);
    let id = order_path.trim_start_matches("/orders/");
    let done = wait_for(
        &app,
        &shop.fan,
        id,
        std::time::Duration::from_secs(20),
        |o| o["status"] == "picked_up",
    )
    .await;

    // Act
    let page = browser.get(&order_path).await;

    // Assert
    assert_eq!(done["status"], "picked_up");
    assert!(!unpaid.html.contains("pickup-number"), "{}", unpaid.html);
    assert!(page.html.contains("Picked up"), "{}", page.html);
    let pickup = ballpark::orders::domain::pickup_number(id);
    assert!(
        page.html.contains(&format!(
            "<strong class=\"pickup-number\">{pickup}</strong>"
        )),
        "the number the store's page shows: {}",
        page.html
    );
    assert!(
        !page.html.contains("data-live"),
        "a finished order is not followed: {}",
        page.html
    );
}

crate::on_both_backends!(
    ordering_from_the_cart_shows_the_order_page_and_paying_marks_it_paid,
    a_bad_cart_shows_the_store_page_again_with_its_problem_and_status,
    submitting_the_same_cart_page_twice_places_one_order,
    someone_elses_order_page_is_not_found_and_a_visitor_must_log_in,
    forms_without_the_csrf_token_are_refused,
    a_review_with_a_hashtag_shows_on_the_store_page_and_the_tags_page,
);
crate::on_both_backends_with!(declined, declining; a_declined_payment_shows_the_order_page_with_402_and_the_reason);
crate::on_both_backends_with!(vendor, quick_vendor; the_order_page_shows_the_pickup_number_once_the_vendor_accepted);
