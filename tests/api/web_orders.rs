//! "My orders" (`GET /orders`): a fan sees their own orders with status and total, and no one
//! else's; a visitor is sent to log in.

use reqwest::StatusCode;

use crate::helpers::TestApp;
use crate::orders::{open_shop, place};
use crate::web_client::Browser;

async fn my_orders_lists_the_fans_own_orders_with_status_and_total(app: TestApp) {
    // Arrange: the fan orders two hot dogs and a beer; another fan orders a beer.
    let shop = open_shop(&app).await;
    let (status, mine) = place(
        &app,
        &shop.fan,
        "web-1",
        &shop.order(&[(shop.hotdog, 2), (shop.beer, 1)]),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let other = app.register("someone_else").await;
    let (status, theirs) = place(&app, &other, "web-2", &shop.order(&[(shop.beer, 1)])).await;
    assert_eq!(status, StatusCode::CREATED, "{theirs}");
    let mut browser = Browser::new(&app);
    browser.accept_language = Some("en".into());
    let login = browser.login("fan@example.com", "password123").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.html);

    // Act
    let page = browser.get("/orders").await;

    // Assert
    assert_eq!(page.status, StatusCode::OK);
    let my_id = mine["order"]["id"].as_str().expect("order id");
    let their_id = theirs["order"]["id"].as_str().expect("order id");
    assert!(page.html.contains(my_id), "{}", page.html);
    assert!(
        !page.html.contains(their_id),
        "another fan's order is listed"
    );
    assert!(page.html.contains("10,500원"), "{}", page.html);
    assert!(
        page.html.contains("Placed, awaiting payment"),
        "{}",
        page.html
    );
}

async fn my_orders_sends_a_visitor_to_log_in_and_shows_an_empty_list_to_a_new_fan(app: TestApp) {
    // Arrange
    let mut visitor = Browser::new(&app);
    let mut newcomer = Browser::new(&app);
    newcomer.register("newcomer").await;

    // Act
    let redirected = visitor.get("/orders").await;
    let empty = newcomer.get("/orders").await;

    // Assert
    assert_eq!(redirected.status, StatusCode::SEE_OTHER);
    assert!(
        redirected.location().starts_with("/login"),
        "{}",
        redirected.location()
    );
    assert_eq!(empty.status, StatusCode::OK);
    assert!(
        empty.html.contains("아직 주문이 없습니다."),
        "{}",
        empty.html
    );
}

crate::on_both_backends!(
    my_orders_lists_the_fans_own_orders_with_status_and_total,
    my_orders_sends_a_visitor_to_log_in_and_shows_an_empty_list_to_a_new_fan,
);
