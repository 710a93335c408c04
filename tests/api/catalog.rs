//! The stadium catalogue: stadiums, stores, menus (who may change them), reviews, hashtags,
//! and the demo seed.

use ballpark::config::Config;
use ballpark::db::Db;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{enc, TestApp};

/// Registers `name` and gives them `role`, as `ballpark user set-role` does.
async fn user_with_role(app: &TestApp, db: &Db, name: &str, role: &str) -> String {
    let token = app.register(name).await;
    assert!(ballpark::community::store::users::set_role(db, name, role)
        .await
        .unwrap());
    token
}

async fn connect(app: &TestApp) -> Db {
    Db::connect(&app.database_url, 1).await.unwrap()
}

/// Creates a store at Jamsil as `admin`; returns its id.
async fn create_store(app: &TestApp, admin: &str, name: &str, owner: Option<&str>) -> i64 {
    let (status, body) = app
        .post(
            "/api/stores",
            Some(admin),
            json!({"store": {"stadium": "jamsil", "name": name, "location": "A01(1층)", "inside": true, "owner": owner}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "create store: {body}");
    body["store"]["id"].as_i64().expect("store id")
}

/// Adds a menu item as `token`; returns the item.
async fn add_item(app: &TestApp, token: &str, store: i64, name: &str, price: i64) -> Value {
    let (status, body) = app
        .post(
            &format!("/api/stores/{store}/menu"),
            Some(token),
            json!({"item": {"name": name, "priceWon": price, "stock": 10}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "add item: {body}");
    body["item"].clone()
}

async fn review(
    app: &TestApp,
    token: &str,
    store: i64,
    rating: i64,
    body: &str,
    hashtags: &[&str],
) -> (StatusCode, Value) {
    app.post(
        &format!("/api/stores/{store}/reviews"),
        Some(token),
        json!({"review": {"rating": rating, "body": body, "hashtags": hashtags}}),
    )
    .await
}

/// An admin, a store owner (`owner`) and the store they own, for the permission tests.
struct Shop {
    db: Db,
    admin: String,
    owner: String,
    store: i64,
}

async fn shop(app: &TestApp) -> Shop {
    let db = connect(app).await;
    let admin = user_with_role(app, &db, "boss", "admin").await;
    let owner = user_with_role(app, &db, "owner", "store_owner").await;
    let store = create_store(app, &admin, "잠실 분식", Some("owner")).await;
    Shop {
        db,
        admin,
        owner,
        store,
    }
}

async fn stadiums_are_listed_with_jamsils_two_home_teams(app: TestApp) {
    let (status, body) = app.get("/api/stadiums", None).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let stadiums = body["stadiums"].as_array().expect("stadiums");
    assert_eq!(stadiums.len(), 9, "{body}");
    let jamsil = stadiums
        .iter()
        .find(|s| s["key"] == "jamsil")
        .expect("jamsil");
    assert_eq!(jamsil["homeTeams"], json!(["doosan", "lg"]));
    assert_eq!(jamsil["nameEn"], "Jamsil Baseball Stadium");
    assert!(stadiums
        .iter()
        .filter(|s| s["key"] != "jamsil")
        .all(|s| s["homeTeams"].as_array().unwrap().len() == 1));

    let (status, one) = app.get("/api/stadiums/jamsil", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["stadium"]["homeTeams"], json!(["doosan", "lg"]));
    let (status, _) = app.get("/api/stadiums/nowhere", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn an_admin_creates_a_store_that_lists_with_no_rating_yet(app: TestApp) {
    let db = connect(&app).await;
    let admin = user_with_role(&app, &db, "boss", "admin").await;

    let id = create_store(&app, &admin, "치킨 파는 곳", None).await;

    let (status, body) = app.get(&format!("/api/stores/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let store = &body["store"];
    assert_eq!(store["stadium"], "jamsil");
    assert_eq!(store["demo"], false);
    assert_eq!(store["owner"], Value::Null);
    assert_eq!(store["menu"], json!([]));
    assert_eq!(store["rating"], json!({"average": null, "count": 0}));
    let (_, list) = app.get("/api/stores?stadium=jamsil", None).await;
    assert_eq!(list["storesCount"], 1);
    assert_eq!(list["stores"][0]["name"], "치킨 파는 곳");
    db.close().await;
}

async fn a_fan_cannot_create_a_store_and_an_unknown_stadium_returns_422(app: TestApp) {
    let db = connect(&app).await;
    let admin = user_with_role(&app, &db, "boss", "admin").await;
    let fan = app.register("fan").await;
    let store = json!({"store": {"stadium": "jamsil", "name": "x", "inside": true}});

    let (as_fan, _) = app.post("/api/stores", Some(&fan), store.clone()).await;
    let (anonymous, _) = app.post("/api/stores", None, store).await;
    let (unknown, body) = app
        .post(
            "/api/stores",
            Some(&admin),
            json!({"store": {"stadium": "wrigley", "name": "x"}}),
        )
        .await;

    assert_eq!(as_fan, StatusCode::FORBIDDEN);
    assert_eq!(anonymous, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["stadium"].is_array(), "{body}");
    assert!(body["errors"]["inside"].is_array(), "{body}");
    db.close().await;
}

async fn an_owner_can_change_the_price_and_stock_of_their_own_store(app: TestApp) {
    let shop = shop(&app).await;
    let item = add_item(&app, &shop.owner, shop.store, "떡볶이", 4_500).await;
    let item_id = item["id"].as_i64().unwrap();

    let (status, body) = app
        .put(
            &format!("/api/stores/{}/menu/{item_id}", shop.store),
            Some(&shop.owner),
            json!({"item": {"priceWon": 5_000, "stock": 0}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["item"],
        json!({"id": item_id, "name": "떡볶이", "priceWon": 5000, "stock": 0, "available": true})
    );
    let (_, store) = app.get(&format!("/api/stores/{}", shop.store), None).await;
    assert_eq!(store["store"]["owner"], "owner");
    assert_eq!(store["store"]["menu"][0]["priceWon"], 5000);
    assert_eq!(store["store"]["menu"][0]["stock"], 0);
    shop.db.close().await;
}

async fn another_owner_or_a_fan_gets_403_and_anonymous_gets_401_on_a_menu(app: TestApp) {
    let shop = shop(&app).await;
    let item = add_item(&app, &shop.owner, shop.store, "어묵", 3_000).await;
    let item_path = format!("/api/stores/{}/menu/{}", shop.store, item["id"]);
    let rival = user_with_role(&app, &shop.db, "rival", "store_owner").await;
    create_store(&app, &shop.admin, "옆 가게", Some("rival")).await;
    let fan = app.register("fan").await;
    let change = json!({"item": {"priceWon": 1}});
    let new_item = json!({"item": {"name": "라면", "priceWon": 4000, "stock": 5}});
    let menu_path = format!("/api/stores/{}/menu", shop.store);

    for token in [&rival, &fan] {
        let (put, _) = app.put(&item_path, Some(token), change.clone()).await;
        let (post, _) = app.post(&menu_path, Some(token), new_item.clone()).await;
        let (delete, _) = app.delete(&item_path, Some(token)).await;
        assert_eq!(
            (put, post, delete),
            (
                StatusCode::FORBIDDEN,
                StatusCode::FORBIDDEN,
                StatusCode::FORBIDDEN
            )
        );
    }
    let (put, _) = app.put(&item_path, None, change).await;
    let (post, _) = app.post(&menu_path, None, new_item).await;
    let (delete, _) = app.delete(&item_path, None).await;

    assert_eq!(
        (put, post, delete),
        (
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED,
            StatusCode::UNAUTHORIZED
        )
    );
    let (_, store) = app.get(&format!("/api/stores/{}", shop.store), None).await;
    assert_eq!(store["store"]["menu"][0]["priceWon"], 3000, "unchanged");
    shop.db.close().await;
}

async fn an_owner_demoted_to_fan_can_no_longer_manage_their_store(app: TestApp) {
    let shop = shop(&app).await;
    ballpark::community::store::users::set_role(&shop.db, "owner", "fan")
        .await
        .unwrap();

    let (status, _) = app
        .post(
            &format!("/api/stores/{}/menu", shop.store),
            Some(&shop.owner),
            json!({"item": {"name": "라면", "priceWon": 4000, "stock": 5}}),
        )
        .await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    shop.db.close().await;
}

async fn an_admin_can_manage_any_stores_menu(app: TestApp) {
    let shop = shop(&app).await;
    let item = add_item(&app, &shop.admin, shop.store, "맥주", 6_000).await;
    let item_path = format!("/api/stores/{}/menu/{}", shop.store, item["id"]);

    let (put, body) = app
        .put(
            &item_path,
            Some(&shop.admin),
            json!({"item": {"name": "생맥주", "available": false}}),
        )
        .await;
    assert_eq!(put, StatusCode::OK, "{body}");
    assert_eq!(body["item"]["name"], "생맥주");
    assert_eq!(body["item"]["available"], false);
    assert_eq!(body["item"]["priceWon"], 6000, "fields not given stay");

    let (delete, _) = app.delete(&item_path, Some(&shop.admin)).await;
    assert_eq!(delete, StatusCode::NO_CONTENT);
    let (again, _) = app.delete(&item_path, Some(&shop.admin)).await;
    assert_eq!(again, StatusCode::NOT_FOUND);
    let (_, store) = app.get(&format!("/api/stores/{}", shop.store), None).await;
    assert_eq!(store["store"]["menu"], json!([]));
    shop.db.close().await;
}

async fn invalid_price_stock_rating_or_hashtag_returns_422_naming_the_field(app: TestApp) {
    let shop = shop(&app).await;
    let fan = app.register("fan").await;
    let menu = format!("/api/stores/{}/menu", shop.store);

    let (status, body) = app
        .post(
            &menu,
            Some(&shop.owner),
            json!({"item": {"name": "", "priceWon": 0, "stock": -1}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["name", "priceWon", "stock"] {
        assert!(body["errors"][field].is_array(), "{field}: {body}");
    }
    for (price, stock) in [
        (json!(1_000_001), json!(100_001)),
        (json!(5.5), json!("ten")),
    ] {
        let (status, body) = app
            .post(
                &menu,
                Some(&shop.owner),
                json!({"item": {"name": "김밥", "priceWon": price, "stock": stock}}),
            )
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["errors"]["priceWon"].is_array(), "{body}");
        assert!(body["errors"]["stock"].is_array(), "{body}");
    }

    let (status, body) = review(&app, &fan, shop.store, 6, "", &["좋아요"]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["rating"].is_array(), "{body}");
    let (status, body) = review(&app, &fan, shop.store, 4, "", &["two words"]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["hashtags"].is_array(), "{body}");
    let eleven: Vec<String> = (0..11).map(|i| format!("tag{i}")).collect();
    let eleven: Vec<&str> = eleven.iter().map(String::as_str).collect();
    let (status, body) = review(&app, &fan, shop.store, 4, "", &eleven).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["hashtags"].is_array(), "{body}");
    let (status, body) = app.get("/api/reviews?hashtag=no%20spaces", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["hashtag"].is_array(), "{body}");
    shop.db.close().await;
}

async fn a_menu_item_name_the_store_already_uses_returns_422(app: TestApp) {
    let shop = shop(&app).await;
    add_item(&app, &shop.owner, shop.store, "김밥", 3_000).await;
    let other = add_item(&app, &shop.owner, shop.store, "라면", 4_000).await;

    let (added, body) = app
        .post(
            &format!("/api/stores/{}/menu", shop.store),
            Some(&shop.owner),
            json!({"item": {"name": "김밥", "priceWon": 3500, "stock": 1}}),
        )
        .await;
    let (renamed, renamed_body) = app
        .put(
            &format!("/api/stores/{}/menu/{}", shop.store, other["id"]),
            Some(&shop.owner),
            json!({"item": {"name": "김밥"}}),
        )
        .await;

    assert_eq!(added, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["name"].is_array(), "{body}");
    assert_eq!(renamed, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(renamed_body["errors"]["name"].is_array(), "{renamed_body}");
    shop.db.close().await;
}

async fn deleting_an_item_that_orders_refer_to_marks_it_unavailable(app: TestApp) {
    let shop = shop(&app).await;
    let item = add_item(&app, &shop.owner, shop.store, "치킨", 20_000).await;
    let item_id = item["id"].as_i64().unwrap();
    app.register("hungry").await;
    let now = ballpark::db::now();
    ballpark::on_write!(&shop.db, pool => {
        let customer: i64 = sqlx::query_scalar("SELECT id FROM users WHERE username = 'hungry'")
            .fetch_one(pool).await.unwrap();
        sqlx::query("INSERT INTO orders (id, customer_id, store_id, status, payment, vendor, total_won, created_at, updated_at) \
                     VALUES ('order-1', $1, $2, 'placed', 'pending', 'pending', 20000, $3, $3)")
            .bind(customer).bind(shop.store).bind(now)
            .execute(pool).await.unwrap();
        sqlx::query("INSERT INTO order_items (order_id, menu_item_id, name, unit_price_won, quantity) \
                     VALUES ('order-1', $1, '치킨', 20000, 1)")
            .bind(item_id)
            .execute(pool).await.unwrap();
    });

    let (status, _) = app
        .delete(
            &format!("/api/stores/{}/menu/{item_id}", shop.store),
            Some(&shop.owner),
        )
        .await;

    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, store) = app.get(&format!("/api/stores/{}", shop.store), None).await;
    assert_eq!(store["store"]["menu"][0]["id"], item_id);
    assert_eq!(store["store"]["menu"][0]["available"], false);
    shop.db.close().await;
}

async fn an_owner_must_have_the_store_owner_role(app: TestApp) {
    let shop = shop(&app).await;
    app.register("just_a_fan").await;
    let path = format!("/api/stores/{}/owner", shop.store);

    let (fan_owner, body) = app
        .put(&path, Some(&shop.admin), json!({"owner": "just_a_fan"}))
        .await;
    let (nobody, _) = app
        .put(&path, Some(&shop.admin), json!({"owner": "ghost"}))
        .await;
    let (by_owner, _) = app
        .put(&path, Some(&shop.owner), json!({"owner": "owner"}))
        .await;
    let (cleared, cleared_body) = app
        .put(&path, Some(&shop.admin), json!({"owner": null}))
        .await;

    assert_eq!(fan_owner, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"]["owner"].is_array(), "{body}");
    assert_eq!(nobody, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(by_owner, StatusCode::FORBIDDEN, "only admins assign owners");
    assert_eq!(cleared, StatusCode::OK);
    assert_eq!(cleared_body["store"]["owner"], Value::Null);
    let (status, _) = app
        .post(
            &format!("/api/stores/{}/menu", shop.store),
            Some(&shop.owner),
            json!({"item": {"name": "라면", "priceWon": 4000, "stock": 5}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no longer the owner");
    shop.db.close().await;
}

async fn the_average_rating_follows_new_and_replaced_reviews(app: TestApp) {
    let shop = shop(&app).await;
    let kim = app.register("kim").await;
    let lee = app.register("lee").await;

    let (first, _) = review(&app, &kim, shop.store, 5, "최고", &[]).await;
    let (second, _) = review(&app, &lee, shop.store, 4, "좋아요", &[]).await;
    let (_, store) = app.get(&format!("/api/stores/{}", shop.store), None).await;
    assert_eq!((first, second), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(
        store["store"]["rating"],
        json!({"average": 4.5, "count": 2})
    );

    let (replaced, body) = review(&app, &kim, shop.store, 1, "식었어요", &[]).await;

    assert_eq!(replaced, StatusCode::OK, "{body}");
    assert_eq!(body["review"]["rating"], 1);
    let (_, store) = app.get(&format!("/api/stores/{}", shop.store), None).await;
    assert_eq!(
        store["store"]["rating"],
        json!({"average": 2.5, "count": 2})
    );
    let (_, list) = app
        .get("/api/stores?stadium=jamsil&inside=true", None)
        .await;
    assert_eq!(
        list["stores"][0]["rating"],
        json!({"average": 2.5, "count": 2})
    );
    let (_, reviews) = app
        .get(&format!("/api/stores/{}/reviews", shop.store), None)
        .await;
    assert_eq!(reviews["reviewsCount"], 2);
    assert_eq!(
        reviews["reviews"][0]["author"]["username"], "kim",
        "the replaced review is the most recently written"
    );
    assert_eq!(reviews["reviews"][0]["body"], "식었어요");
    shop.db.close().await;
}

async fn reviews_are_found_by_hashtag_across_stores(app: TestApp) {
    let shop = shop(&app).await;
    let other = create_store(&app, &shop.admin, "사직 떡볶이", None).await;
    let fan = app.register("fan").await;
    let (_, written) = review(
        &app,
        &fan,
        shop.store,
        5,
        "김밥 최고 #맛집 #Beer",
        &["#가성비"],
    )
    .await;
    review(&app, &fan, other, 4, "여기도 #맛집", &[]).await;
    review(
        &app,
        &fan,
        shop.store,
        5,
        "다시 써도 #맛집 #Beer",
        &["#가성비"],
    )
    .await;

    let (status, body) = app
        .get(&format!("/api/reviews?hashtag={}", enc("#맛집")), None)
        .await;
    let (_, beer) = app.get("/api/reviews?hashtag=BEER", None).await;
    let (_, none) = app.get("/api/reviews?hashtag=nothing", None).await;

    assert_eq!(
        written["review"]["hashtags"],
        json!(["beer", "가성비", "맛집"])
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reviewsCount"], 2, "{body}");
    let stores: Vec<&str> = body["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["store"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(stores, vec!["잠실 분식", "사직 떡볶이"], "newest first");
    assert_eq!(beer["reviewsCount"], 1);
    assert_eq!(none["reviewsCount"], 0);
    shop.db.close().await;
}

async fn only_the_author_or_an_admin_can_delete_a_review(app: TestApp) {
    let shop = shop(&app).await;
    let kim = app.register("kim").await;
    let lee = app.register("lee").await;
    let (_, kims) = review(&app, &kim, shop.store, 5, "", &[]).await;
    let (_, lees) = review(&app, &lee, shop.store, 3, "", &[]).await;
    let path = |r: &Value| format!("/api/stores/{}/reviews/{}", shop.store, r["review"]["id"]);

    let (by_other, _) = app.delete(&path(&kims), Some(&lee)).await;
    let (by_author, _) = app.delete(&path(&kims), Some(&kim)).await;
    let (by_admin, _) = app.delete(&path(&lees), Some(&shop.admin)).await;
    let (gone, _) = app.delete(&path(&lees), Some(&shop.admin)).await;

    assert_eq!(by_other, StatusCode::FORBIDDEN);
    assert_eq!(by_author, StatusCode::NO_CONTENT);
    assert_eq!(by_admin, StatusCode::NO_CONTENT);
    assert_eq!(gone, StatusCode::NOT_FOUND);
    let (_, store) = app.get(&format!("/api/stores/{}", shop.store), None).await;
    assert_eq!(
        store["store"]["rating"],
        json!({"average": null, "count": 0})
    );
    shop.db.close().await;
}

async fn an_owner_cannot_review_their_own_store(app: TestApp) {
    let shop = shop(&app).await;

    let (status, _) = review(&app, &shop.owner, shop.store, 5, "최고의 가게", &[]).await;

    assert_eq!(status, StatusCode::FORBIDDEN);
    shop.db.close().await;
}

async fn lists_refuse_out_of_range_paging_and_count_beyond_the_page(app: TestApp) {
    let db = connect(&app).await;
    let admin = user_with_role(&app, &db, "boss", "admin").await;
    for name in ["a", "b", "c"] {
        create_store(&app, &admin, name, None).await;
    }

    let (status, page) = app.get("/api/stores?limit=2&offset=1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["storesCount"], 3);
    let names: Vec<&str> = page["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["b", "c"]);
    let (_, outside) = app.get("/api/stores?inside=false", None).await;
    assert_eq!(outside["storesCount"], 0);

    for path in [
        "/api/stores?limit=0",
        "/api/stores?limit=101",
        "/api/stores?offset=-1",
        "/api/reviews?limit=101",
        "/api/stores?stadium=wrigley",
    ] {
        let (status, body) = app.get(path, None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
    }
    let (status, _) = app.get("/api/stores?limit=abc", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get("/api/stores/999/reviews", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    db.close().await;
}

crate::on_both_backends!(
    stadiums_are_listed_with_jamsils_two_home_teams,
    an_admin_creates_a_store_that_lists_with_no_rating_yet,
    a_fan_cannot_create_a_store_and_an_unknown_stadium_returns_422,
    an_owner_can_change_the_price_and_stock_of_their_own_store,
    another_owner_or_a_fan_gets_403_and_anonymous_gets_401_on_a_menu,
    an_owner_demoted_to_fan_can_no_longer_manage_their_store,
    an_admin_can_manage_any_stores_menu,
    invalid_price_stock_rating_or_hashtag_returns_422_naming_the_field,
    a_menu_item_name_the_store_already_uses_returns_422,
    deleting_an_item_that_orders_refer_to_marks_it_unavailable,
    an_owner_must_have_the_store_owner_role,
    the_average_rating_follows_new_and_replaced_reviews,
    reviews_are_found_by_hashtag_across_stores,
    only_the_author_or_an_admin_can_delete_a_review,
    an_owner_cannot_review_their_own_store,
    lists_refuse_out_of_range_paging_and_count_beyond_the_page,
);

fn demo_on(config: &mut Config) {
    config.demo = true;
}

async fn the_demo_seeds_239_stores_with_made_up_prices_once(app: TestApp) {
    let (status, page) = app.get("/api/stores?limit=100", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["storesCount"], 239);
    let (_, jamsil) = app.get("/api/stores?stadium=jamsil&limit=1", None).await;
    assert_eq!(jamsil["storesCount"], 59);
    let (_, stadium) = app.get("/api/stadiums/jamsil", None).await;
    assert_eq!(stadium["stadium"]["storesCount"], 59);

    let first = page["stores"][0]["id"].as_i64().unwrap();
    let (_, store) = app.get(&format!("/api/stores/{first}"), None).await;
    let store = &store["store"];
    assert_eq!(store["demo"], true, "demo prices are marked as such");
    let menu = store["menu"].as_array().unwrap();
    assert!(!menu.is_empty(), "{store}");
    for item in menu {
        let price = item["priceWon"].as_i64().unwrap();
        assert!(price >= 1_000 && price % 500 == 0, "{item}");
        assert_eq!(item["stock"], 50);
    }

    // Seeding again (the next start) adds nothing.
    let db = connect(&app).await;
    let passwords = ballpark::auth::Passwords::new(1);
    ballpark::demo::load_demo_content(&db, &passwords)
        .await
        .unwrap();
    let (_, again) = app.get("/api/stores?limit=1", None).await;
    assert_eq!(again["storesCount"], 239);
    let (_, store_again) = app.get(&format!("/api/stores/{first}"), None).await;
    assert_eq!(
        store_again["store"]["menu"].as_array().unwrap().len(),
        menu.len()
    );
    db.close().await;
}

async fn the_demo_owner_manages_their_stands_and_demo_reviews_carry_hashtags(app: TestApp) {
    let (status, login) = app
        .post(
            "/api/users/login",
            None,
            json!({"user": {"email": "jamsil_stand@demo.ballpark.invalid", "password": "demo-password"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    assert_eq!(login["user"]["role"], "store_owner");
    let token = login["user"]["token"].as_str().unwrap().to_string();
    let (_, stores) = app.get("/api/stores?stadium=jamsil&limit=100", None).await;
    let owned: Vec<&Value> = stores["stores"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["owner"] == "jamsil_stand")
        .collect();
    assert_eq!(owned.len(), 3, "{stores}");
    let (_, store) = app
        .get(&format!("/api/stores/{}", owned[0]["id"]), None)
        .await;
    let item = &store["store"]["menu"][0];

    let (status, body) = app
        .put(
            &format!("/api/stores/{}/menu/{}", owned[0]["id"], item["id"]),
            Some(&token),
            json!({"item": {"priceWon": 4_000, "stock": 49}}),
        )
        .await;

    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["item"]["priceWon"], 4000);
    let (_, reviews) = app.get("/api/reviews?hashtag=맛집", None).await;
    assert!(reviews["reviewsCount"].as_i64().unwrap() >= 3, "{reviews}");
    assert!(reviews["reviews"][0]["body"]
        .as_str()
        .unwrap()
        .contains("데모"));
}

crate::on_both_backends_with!(
    with_demo,
    demo_on;
    the_demo_seeds_239_stores_with_made_up_prices_once,
    the_demo_owner_manages_their_stands_and_demo_reviews_carry_hashtags,
);
