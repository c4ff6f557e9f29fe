from tests.conftest import make_user


def test_sign_in_and_out(app, client, auth):
    make_user(app)
    response = auth.sign_in()
    assert response.status_code == 303
    page = client.get("/")
    assert "Welcome, Jordan Example" in page.get_data(as_text=True)
    cookie = client.get_cookie("portal_session").value
    assert auth.sign_out().status_code == 303
    client.set_cookie("portal_session", cookie)
    response = client.get("/profile/")
    assert response.status_code == 303 and "/auth/sign-in" in response.headers["Location"]
