//! The store owner's pages: `/owner` lists the owner's stores, `/stores/{id}/manage` shows the
//! store's incoming orders and its menu forms (add, change price/stock/sold-out, delete, each
//! with the CSRF token, 422 with the errors re-rendered), and `/stores/{id}/manage/orders` is
//! the orders list alone; fans get 403 pages, an unknown store a 404 page.

use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::orders::{open_shop, place, Shop};
use crate::web_client::Browser;

/// The shop's owner, signed in through the login form.
async fn owner_browser<'a>(app: &'a TestApp) -> Browser<'a> {
    let mut browser = Browser::new(app);
    let login = browser.login("owner@example.com", "password123").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.html);
    browser
}

async fn menu_item(shop: &Shop, name: &str) -> Option<(i64, i64, bool)> {
    let sql = format!(
        "SELECT price_won, stock, available FROM menu_items WHERE store_id = {} AND name = '{name}'",
        shop.store_id
    );
    ballpark::on_read!(&shop.db, pool => sqlx::query_as::<_, (i64, i64, bool)>(&sql)
        .fetch_optional(pool).await.unwrap())
}

async fn an_owner_sees_their_stores_and_a_fan_gets_403_pages(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut owner = owner_browser(&app).await;
    let mut fan = Browser::new(&app);
    fan.login("fan@example.com", "password123").await;
    let mut visitor = Browser::new(&app);
    let manage = format!("/stores/{}/manage", shop.store_id);

    // Act
    let list = owner.get("/owner").await;
    let page = owner.get(&manage).await;
    let unknown = owner.get("/stores/999999/manage").await;
    let junk = owner.get("/stores/abc/manage").await;
    let fan_list = fan.get("/owner").await;
    let fan_page = fan.get(&manage).await;
    let fan_fragment = fan.get(&format!("{manage}/orders")).await;
    let redirected = visitor.get(&manage).await;

    // Assert
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.html.contains("테스트 매점"), "{}", list.html);
    assert!(
        list.html.contains(&format!("href=\"{manage}\"")),
        "{}",
        list.html
    );
    assert!(
        list.html.contains("href=\"/owner\""),
        "the header links the owner's pages"
    );
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.html.contains("핫도그"), "{}", page.html);
    assert!(page.html.contains("/static/owner.js"), "{}", page.html);
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(
        unknown.html.contains("<html"),
        "a 404 page: {}",
        unknown.html
    );
    assert_eq!(junk.status, StatusCode::NOT_FOUND);
    assert_eq!(fan_list.status, StatusCode::FORBIDDEN);
    assert!(
        !fan_list.html.contains("href=\"/owner\""),
        "no owner link for a fan"
    );
    assert_eq!(fan_page.status, StatusCode::FORBIDDEN);
    assert!(
        fan_page.html.contains("권한이 없습니다."),
        "{}",
        fan_page.html
    );
    assert_eq!(fan_fragment.status, StatusCode::FORBIDDEN);
    assert_eq!(redirected.status, StatusCode::SEE_OTHER);
    assert!(redirected.location().starts_with("/login"));
}

async fn an_owner_adds_changes_and_deletes_menu_items_through_the_forms(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut owner = owner_browser(&app).await;
    let manage = format!("/stores/{}/manage", shop.store_id);
    let csrf = owner.get(&manage).await.csrf();

    // Act
    let added = owner
        .post(
            &format!("{manage}/menu"),
            &[
                ("csrf", &csrf),
                ("name", "소시지"),
                ("price", "3,500"),
                ("stock", "10"),
            ],
        )
        .await;
    let after_add = menu_item(&shop, "소시지").await;
    let changed = owner
        .post(
            &format!("{manage}/menu/{}", shop.beer),
            &[
                ("csrf", &csrf),
                ("price", "5000"),
                ("stock", "0"),
                ("sold_out", "1"),
            ],
        )
        .await;
    let after_change = menu_item(&shop, "맥주").await;
    let back_on = owner
        .post(
            &format!("{manage}/menu/{}", shop.beer),
            &[("csrf", &csrf), ("price", "5000"), ("stock", "7")],
        )
        .await;
    let after_back_on = menu_item(&shop, "맥주").await;
    let sausage = ballpark::on_read!(&shop.db, pool => sqlx::query_scalar::<_, i64>(
        "SELECT id FROM menu_items WHERE name = '소시지'").fetch_one(pool).await.unwrap());
    let deleted = owner
        .post(
            &format!("{manage}/menu/{sausage}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    let after_delete = menu_item(&shop, "소시지").await;
    let page = owner.get(deleted.location()).await;

    // Assert
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.html);
    assert!(
        added.location().starts_with(&manage),
        "{}",
        added.location()
    );
    assert_eq!(after_add, Some((3500, 10, true)));
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.html);
    assert_eq!(after_change, Some((5000, 0, false)));
    assert_eq!(back_on.status, StatusCode::SEE_OTHER, "{}", back_on.html);
    assert_eq!(after_back_on, Some((5000, 7, true)));
    assert_eq!(deleted.status, StatusCode::SEE_OTHER, "{}", deleted.html);
    assert_eq!(after_delete, None);
    assert!(page.html.contains("저장했습니다."), "{}", page.html);
}

async fn invalid_menu_forms_are_answered_422_with_the_errors_and_what_was_typed(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut owner = owner_browser(&app).await;
    owner.accept_language = Some("en".into());
    let manage = format!("/stores/{}/manage", shop.store_id);
    let csrf = owner.get(&manage).await.csrf();

    // Act
    let bad_add = owner
        .post(
            &format!("{manage}/menu"),
            &[
                ("csrf", &csrf),
                ("name", "떡볶이"),
                ("price", "abc"),
                ("stock", "-1"),
            ],
        )
        .await;
    let taken = owner
        .post(
            &format!("{manage}/menu"),
            &[
                ("csrf", &csrf),
                ("name", "맥주"),
                ("price", "4000"),
                ("stock", "1"),
            ],
        )
        .await;
    let bad_change = owner
        .post(
            &format!("{manage}/menu/{}", shop.hotdog),
            &[("csrf", &csrf), ("price", "0"), ("stock", "5")],
        )
        .await;
    let missing_item = owner
        .post(
            &format!("{manage}/menu/999999"),
            &[("csrf", &csrf), ("price", "1000"), ("stock", "5")],
        )
        .await;

    // Assert
    assert_eq!(bad_add.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad_add.html.contains("Price (won)"), "{}", bad_add.html);
    assert!(
        bad_add.html.contains("must be a whole number"),
        "{}",
        bad_add.html
    );
    assert!(
        bad_add.html.contains("<strong>Stock</strong>"),
        "{}",
        bad_add.html
    );
    assert!(
        bad_add.html.contains("value=\"떡볶이\""),
        "typed name kept: {}",
        bad_add.html
    );
    assert_eq!(menu_item(&shop, "떡볶이").await, None);
    assert_eq!(taken.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(taken.html.contains("already been taken"), "{}", taken.html);
    assert_eq!(bad_change.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad_change.html.contains("from 1 to 1000000"),
        "{}",
        bad_change.html
    );
    assert_eq!(menu_item(&shop, "핫도그").await, Some((3000, 5, true)));
    assert_eq!(missing_item.status, StatusCode::NOT_FOUND);
}

async fn menu_forms_without_the_csrf_token_or_from_a_fan_change_nothing(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut owner = owner_browser(&app).await;
    let mut fan = Browser::new(&app);
    fan.login("fan@example.com", "password123").await;
    let fan_csrf = fan.get("/").await.csrf();
    let manage = format!("/stores/{}/manage", shop.store_id);

    // Act
    let no_token = owner
        .post(
            &format!("{manage}/menu"),
            &[("name", "소시지"), ("price", "3500"), ("stock", "10")],
        )
        .await;
    let by_fan = fan
        .post(
            &format!("{manage}/menu/{}", shop.hotdog),
            &[("csrf", &fan_csrf), ("price", "1"), ("stock", "0")],
        )
        .await;
    let fan_delete = fan
        .post(
            &format!("{manage}/menu/{}/delete", shop.hotdog),
            &[("csrf", &fan_csrf)],
        )
        .await;

    // Assert
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    assert_eq!(menu_item(&shop, "소시지").await, None);
    assert_eq!(by_fan.status, StatusCode::FORBIDDEN);
    assert_eq!(fan_delete.status, StatusCode::FORBIDDEN);
    assert_eq!(menu_item(&shop, "핫도그").await, Some((3000, 5, true)));
}

async fn the_orders_list_shows_a_placed_order_with_its_pickup_number_and_lines(app: TestApp) {
    // Arrange
    let shop = open_shop(&app).await;
    let mut owner = owner_browser(&app).await;
    let manage = format!("/stores/{}/manage", shop.store_id);
    let empty = owner.get(&format!("{manage}/orders")).await;
    let (status, placed) = place(
        &app,
        &shop.fan,
        "owner-web-1",
        &shop.order(&[(shop.hotdog, 2), (shop.beer, 1)]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let id = placed["order"]["id"].as_str().unwrap().to_string();
    let pickup = id[id.len() - 4..].to_uppercase();

    // Act
    let fragment = owner.get(&format!("{manage}/orders")).await;
    let page = owner.get(&manage).await;

    // Assert
    assert_eq!(empty.status, StatusCode::OK);
    assert!(
        empty.html.contains("아직 주문이 없습니다."),
        "{}",
        empty.html
    );
    assert_eq!(fragment.status, StatusCode::OK);
    assert!(!fragment.html.contains("<html"), "a fragment, not a page");
    assert!(
        fragment.html.contains(&format!("data-order=\"{id}\"")),
        "{}",
        fragment.html
    );
    assert!(fragment.html.contains(&pickup), "{}", fragment.html);
    assert!(
        fragment.html.contains("핫도그 ×2, 맥주 ×1"),
        "{}",
        fragment.html
    );
    assert!(fragment.html.contains("10,500원"), "{}", fragment.html);
    assert!(
        fragment.html.contains("주문됨, 결제 대기"),
        "{}",
        fragment.html
    );
    assert!(page.html.contains(&id), "{}", page.html);
    assert!(
        !page.html.contains("data-after=\"0\""),
        "the live stream starts after the placed order's history: {}",
        page.html
    );
}

async fn a_demoted_owner_loses_the_page_and_the_stores_order_stream_at_once(app: TestApp) {
    // Arrange: the owner's page works, then an admin makes them a fan.
    let shop = open_shop(&app).await;
    let mut owner = owner_browser(&app).await;
    let manage = format!("/stores/{}/manage", shop.store_id);
    assert_eq!(owner.get(&manage).await.status, StatusCode::OK);
    let token = shop.owner.clone();
    ballpark::community::store::users::set_role(&shop.db, "owner", "fan")
        .await
        .unwrap();

    // Act
    let page = owner.get(&manage).await;
    let (ticket, _) = app
        .post(
            &format!("/api/stores/{}/orders/events/ticket", shop.store_id),
            Some(&token),
            serde_json::json!({}),
        )
        .await;
    let (orders, _) = app
        .get(
            &format!("/api/stores/{}/orders", shop.store_id),
            Some(&token),
        )
        .await;

    // Assert: the same rule as the menu API (catalog::check_manager).
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert_eq!(ticket, StatusCode::FORBIDDEN);
    assert_eq!(orders, StatusCode::FORBIDDEN);
}

crate::on_both_backends!(
    a_demoted_owner_loses_the_page_and_the_stores_order_stream_at_once,
    an_owner_sees_their_stores_and_a_fan_gets_403_pages,
    an_owner_adds_changes_and_deletes_menu_items_through_the_forms,
    invalid_menu_forms_are_answered_422_with_the_errors_and_what_was_typed,
    menu_forms_without_the_csrf_token_or_from_a_fan_change_nothing,
    the_orders_list_shows_a_placed_order_with_its_pickup_number_and_lines,
);
