"""The block classifier, by tables of realistic responses (pages under ``pages/``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from scrapy_hitl.classifier import BlockClassifier, Observation, Verdict, classify
from scrapy_hitl.signatures import DEFAULT_SIGNATURES, SignatureError, compile_signature

PAGES = Path(__file__).parent / "pages"
URL = "https://www.example.com/products/42"
DEFAULT = BlockClassifier()


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def obs(status: int, headers: dict[str, str] | None = None, body: str = "", *, url: str = URL, **kw) -> Observation:
    return Observation(url=url, status=status, headers=headers or {}, body=body, **kw)


HTML = {"content-type": "text/html; charset=utf-8"}
CLOUDFLARE = {
    "content-type": "text/html; charset=UTF-8",
    "server": "cloudflare",
    "cf-ray": "8a1b2c3d4e5f6789-FRA",
    "cache-control": "private, max-age=0, no-store, no-cache, must-revalidate, post-check=0, pre-check=0",
    "expires": "Thu, 01 Jan 1970 00:00:01 GMT",
    "referrer-policy": "same-origin",
    "x-frame-options": "SAMEORIGIN",
    "vary": "Accept-Encoding",
}
CF_CHALLENGE = {
    **CLOUDFLARE,
    "cf-mitigated": "challenge",
    "critical-ch": "Sec-CH-UA-Bitness, Sec-CH-UA-Arch, Sec-CH-UA-Full-Version, Sec-CH-UA-Mobile, Sec-CH-UA-Model",
    "cross-origin-embedder-policy": "require-corp",
    "permissions-policy": "accelerometer=(),autoplay=(),browsing-topics=(),camera=(),clipboard-read=()",
}
DATADOME = {
    "content-type": "text/html;charset=utf-8",
    "server": "nginx",
    "x-datadome": "protected",
    "x-dd-b": "1",
    "x-datadome-cid": "AHrlqAAAAAMA8Xb3y2Cw4DkAXWZbvQ==",
    "accept-ch": "Sec-CH-UA,Sec-CH-UA-Mobile,Sec-CH-UA-Platform,Sec-CH-UA-Arch,Sec-CH-UA-Full-Version-List",
    "cache-control": "max-age=0, private, no-cache, no-store, must-revalidate",
    "pragma": "no-cache",
    "set-cookie": "datadome=8~bZ5xT0qY3wN7kR2mP9sL4vC1jH6gF0dA5eU8iO3aK_tQ7wZ2xV9bN4mL1kJ6hG3fD0sA8pO5iU2yT9rE6wQ3; "
    "Max-Age=31536000; Domain=.example.com; Path=/; Secure; SameSite=Lax",
}
DATADOME_PAGE = {
    "content-type": "text/html; charset=utf-8",
    "x-datadome": "protected",
    "set-cookie": "datadome=Qm~2s9dK1pL8vB4nX7cZ0wE5rT3yU6iO9aS2dF; Max-Age=31536000; Domain=.example.fr; Path=/; "
    "Secure; SameSite=Lax",
}
PERIMETERX = {
    "content-type": "text/html",
    "cache-control": "no-cache, no-store, must-revalidate",
    "set-cookie": "_pxhd=Zk1L2m3N4o5P6q7R8s9T0u1V2w3X4y5Z6a7B8c9D0e1F:a1b2c3d4-3a2b-11ef-9f1e-6f4b5a7c8d9e; "
    "Expires=Fri, 03 Jul 2025 10:15:42 GMT; path=/;",
}
INCAPSULA = {
    "content-type": "text/html",
    "cache-control": "no-cache, no-store",
    "connection": "close",
    "x-cdn": "Imperva",
    "x-iinfo": "6-12345678-0 0NNN RT(1720000000123 18) q(0 -1 -1 0) r(0 -1) B12(4,315,0) U18",
    "set-cookie": "incap_ses_1184_2468135=f0e1d2c3b4a59687aB9cD8eF7gH6iJ5kL4mN3oP2qR1sT0=; path=/; "
    "Domain=.example.com; Secure; SameSite=None",
}
AKAMAI = {
    "server": "AkamaiGHost",
    "mime-version": "1.0",
    "content-type": "text/html",
    "content-length": "407",
    "expires": "Wed, 03 Jul 2024 10:15:42 GMT",
    "cache-control": "max-age=0, no-cache, no-store",
    "pragma": "no-cache",
    "connection": "close",
}
AWS_CAPTCHA = {
    "server": "awselb/2.0",
    "content-type": "text/html; charset=UTF-8",
    "cache-control": "no-store, max-age=0",
    "x-amzn-waf-action": "captcha",
}
AWS_CHALLENGE = {
    "server": "CloudFront",
    "content-type": "text/html; charset=UTF-8",
    "x-amzn-waf-action": "challenge",
    "x-cache": "Error from cloudfront",
    "via": "1.1 5e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b.cloudfront.net (CloudFront)",
    "x-amz-cf-pop": "FRA56-P7",
    "x-amz-cf-id": "q1W2e3R4t5Y6u7I8o9P0aSdFgHjKlZxCvBnM-q1W2e3R4t5Y6u7I8o9==",
}
YANDEX_REDIRECT = {
    "location": "https://yandex.ru/showcaptcha?cc=1&mt=0A1B2C3D4E5F&retpath=aHR0cHM6Ly95YW5kZXgucnUvc2VhcmNoLz90ZXh0"
    "PXNjcmFweSttaWRkbGV3YXJl_0f1e2d3c4b5a69788796a5b4c3d2e1f0&t=2/1720000000/29648463ef1da81f884217cfc0797fa1"
    "&u=d6349a17-c0f82874-81106b27-4652eefe&s=045de9ccdc402ce78616587d0c9b986d",
    "x-yandex-captcha": "captcha",
    "x-content-type-options": "nosniff",
}
YANDEX_URL = (
    "https://yandex.ru/showcaptcha?cc=1&mt=0A1B2C3D4E5F&retpath=aHR0cHM6Ly95YW5kZXgucnUvc2VhcmNoLz90ZXh0PXNjcmFweSt"
    "taWRkbGV3YXJl_0f1e2d3c4b5a69788796a5b4c3d2e1f0&t=2/1720000000/29648463ef1da81f884217cfc0797fa1"
)
GOOGLE_SORRY_URL = (
    "https://www.google.com/sorry/index?continue=https://www.google.com/search%3Fq%3Dscrapy%2Bmiddleware%26hl%3Den"
    "&q=EgQDAgEBGNrYqrQGIjDy3mFp2k0r8Yq1cQeL7sV4bN9xZ0wT3uH6jK5dR2aS8fG1mC4oP7iU0yE3tW6qMgFyWgFD"
)
AMAZON = {
    "server": "Server",
    "content-type": "text/html;charset=UTF-8",
    "x-amz-rid": "XB4D2FK9Q1R7ZP0HW3NM",
    "vary": "Content-Type,Accept-Encoding,User-Agent",
}
SUCURI = {
    "server": "Sucuri/Cloudproxy",
    "content-type": "text/html",
    "x-sucuri-id": "18017",
    "cache-control": "no-cache, no-store, must-revalidate",
}


def pause(kind: str, reason: str, vendor: str | None = None) -> Verdict:
    return Verdict.pause(kind, reason, vendor)


# (observation, name of the signature that should match or None, expected verdict)
SIGNATURE_CASES = [
    # --- Cloudflare --------------------------------------------------------------------------
    pytest.param(
        obs(403, CF_CHALLENGE, page("cloudflare_challenge.html")),
        "cloudflare_challenge",
        pause("captcha_solve", "cloudflare_challenge", "cloudflare"),
        id="cloudflare-managed-challenge-403",
    ),
    pytest.param(
        obs(403, CF_CHALLENGE, page("cloudflare_challenge.html"), can_escalate=True),
        "cloudflare_challenge",
        Verdict.escalate("cloudflare_challenge", "cloudflare"),
        id="cloudflare-managed-challenge-escalates",
    ),
    pytest.param(
        obs(403, CF_CHALLENGE, page("cloudflare_challenge.html"), has_session=True),
        "cloudflare_challenge",
        pause("captcha_solve", "cloudflare_challenge", "cloudflare"),
        id="cloudflare-challenge-with-session-is-still-a-captcha",
    ),
    pytest.param(
        obs(503, CLOUDFLARE, page("cloudflare_iuam_legacy.html")),
        "cloudflare_challenge",
        pause("captcha_solve", "cloudflare_challenge", "cloudflare"),
        id="cloudflare-legacy-iuam-503-localised-title-body-only",
    ),
    pytest.param(
        obs(403, CLOUDFLARE, page("cloudflare_1020.html")),
        "cloudflare_access_denied",
        pause("manual_access", "hard_block", "cloudflare"),
        id="cloudflare-1020-hard-block",
    ),
    pytest.param(
        obs(403, CLOUDFLARE, page("cloudflare_1020.html"), can_escalate=True),
        "cloudflare_access_denied",
        pause("manual_access", "hard_block", "cloudflare"),
        id="cloudflare-1020-never-escalates",
    ),
    pytest.param(
        obs(403, CLOUDFLARE, page("cloudflare_1010.html")),
        "cloudflare_access_denied",
        pause("manual_access", "hard_block", "cloudflare"),
        id="cloudflare-1010-browser-signature-banned",
    ),
    pytest.param(
        obs(403, CLOUDFLARE, page("cloudflare_waf_block.html")),
        "cloudflare_access_denied",
        pause("manual_access", "hard_block", "cloudflare"),
        id="cloudflare-sorry-you-have-been-blocked",
    ),
    pytest.param(
        obs(403, {**CLOUDFLARE, "content-type": "text/plain; charset=UTF-8"}, "error code: 1020"),
        "cloudflare_access_denied",
        pause("manual_access", "hard_block", "cloudflare"),
        id="cloudflare-1020-plain-text",
    ),
    pytest.param(
        obs(429, {**CLOUDFLARE, "retry-after": "60"}, page("cloudflare_1015.html")),
        "cloudflare_rate_limited",
        Verdict.retry("rate_limited", vendor="cloudflare"),
        id="cloudflare-1015-rate-limited-429",
    ),
    pytest.param(
        obs(403, CLOUDFLARE, page("cloudflare_1015.html"), can_escalate=True),
        "cloudflare_rate_limited",
        Verdict.retry("rate_limited", vendor="cloudflare"),
        id="cloudflare-1015-on-403-is-still-a-rate-limit",
    ),
    pytest.param(
        obs(403, CF_CHALLENGE, page("cloudflare_challenge.html").replace("Just a moment...", "Nur einen Moment…")),
        "cloudflare_challenge",
        pause("captcha_solve", "cloudflare_challenge", "cloudflare"),
        id="cloudflare-challenge-german-title",
    ),
    pytest.param(
        obs(200, CLOUDFLARE, page("article_cloudflare.html"), can_escalate=True),
        None,
        Verdict.ok(),
        id="cloudflare-normal-article-with-jsd-script-ok",
    ),
    # --- DataDome ----------------------------------------------------------------------------
    pytest.param(
        obs(403, DATADOME, page("datadome_captcha.html")),
        "datadome_captcha",
        pause("captcha_solve", "datadome_captcha", "datadome"),
        id="datadome-captcha-t-fe",
    ),
    pytest.param(
        obs(403, DATADOME, page("datadome_captcha.html"), can_escalate=True),
        "datadome_captcha",
        Verdict.escalate("datadome_captcha", "datadome"),
        id="datadome-captcha-escalates",
    ),
    pytest.param(
        obs(403, DATADOME, page("datadome_banned.html")),
        "datadome_banned",
        pause("manual_access", "hard_block", "datadome"),
        id="datadome-banned-t-bv",
    ),
    pytest.param(
        obs(403, DATADOME, page("datadome_banned.html"), can_escalate=True),
        "datadome_banned",
        pause("manual_access", "hard_block", "datadome"),
        id="datadome-banned-never-escalates",
    ),
    pytest.param(
        obs(403, DATADOME, page("datadome_device_check.html"), can_escalate=True),
        "datadome_captcha",
        Verdict.escalate("datadome_captcha", "datadome"),
        id="datadome-device-check-rt-i",
    ),
    pytest.param(
        obs(200, DATADOME_PAGE, page("datadome_protected_page.html"), url="https://www.example.fr/c/randonnee"),
        None,
        Verdict.ok(),
        id="datadome-protected-200-page-ok",
    ),
    # --- PerimeterX / HUMAN ------------------------------------------------------------------
    pytest.param(
        obs(403, PERIMETERX, page("perimeterx_block.html")),
        "perimeterx_captcha",
        pause("captcha_solve", "perimeterx_captcha", "perimeterx"),
        id="perimeterx-press-and-hold",
    ),
    pytest.param(
        obs(403, {**PERIMETERX, "content-type": "application/json"}, page("perimeterx_abr.json")),
        "perimeterx_captcha",
        pause("captcha_solve", "perimeterx_captcha", "perimeterx"),
        id="perimeterx-advanced-blocking-response-json",
    ),
    pytest.param(
        obs(200, {**PERIMETERX, "content-type": "text/html; charset=utf-8"}, page("perimeterx_protected_page.html")),
        None,
        Verdict.ok(),
        id="perimeterx-sensor-on-normal-200-ok",
    ),
    # --- Imperva / Incapsula -----------------------------------------------------------------
    pytest.param(
        obs(200, INCAPSULA, page("imperva_incapsula.html")),
        "imperva_challenge",
        pause("captcha_solve", "imperva_challenge", "imperva"),
        id="incapsula-iframe-interstitial-200",
    ),
    pytest.param(
        obs(200, INCAPSULA, page("imperva_incapsula.html"), can_escalate=True),
        "imperva_challenge",
        Verdict.escalate("imperva_challenge", "imperva"),
        id="incapsula-interstitial-escalates",
    ),
    pytest.param(
        obs(200, {**INCAPSULA, "content-type": "text/html; charset=utf-8"}, page("imperva_protected_page.html")),
        None,
        Verdict.ok(),
        id="incapsula-injected-script-on-normal-page-ok",
    ),
    pytest.param(
        obs(403, INCAPSULA, page("imperva_error15.html")),
        "imperva_access_denied",
        pause("manual_access", "hard_block", "imperva"),
        id="imperva-error-15-hard-block",
    ),
    pytest.param(
        obs(403, HTML, page("imperva_pardon_our_interruption.html")),
        "imperva_abp_challenge",
        pause("captcha_solve", "imperva_abp_challenge", "imperva"),
        id="imperva-abp-pardon-our-interruption",
    ),
    # --- Akamai ------------------------------------------------------------------------------
    pytest.param(
        obs(403, AKAMAI, page("akamai_access_denied.html")),
        "akamai_access_denied",
        pause("manual_access", "hard_block", "akamai"),
        id="akamai-access-denied-reference-18",
    ),
    pytest.param(
        obs(403, {**AKAMAI, "server": "nginx"}, "<html><head><title>Access Denied</title></head><body>No</body>"),
        None,
        pause("manual_access", "http_403"),
        id="akamai-like-title-without-reference-is-a-plain-403",
    ),
    # --- AWS WAF -----------------------------------------------------------------------------
    pytest.param(
        obs(405, AWS_CAPTCHA, page("aws_waf_captcha.html")),
        "aws_waf_challenge",
        pause("captcha_solve", "aws_waf_challenge", "aws_waf"),
        id="aws-waf-captcha-405",
    ),
    pytest.param(
        obs(202, AWS_CHALLENGE, page("aws_waf_challenge.html"), can_escalate=True),
        "aws_waf_challenge",
        Verdict.escalate("aws_waf_challenge", "aws_waf"),
        id="aws-waf-js-challenge-202-escalates",
    ),
    # --- Yandex, Google, Amazon --------------------------------------------------------------
    pytest.param(
        obs(302, YANDEX_REDIRECT, url="https://yandex.ru/search/?text=scrapy+middleware"),
        "yandex_captcha",
        pause("captcha_solve", "yandex_captcha", "yandex"),
        id="yandex-redirect-to-showcaptcha",
    ),
    pytest.param(
        obs(200, {**HTML, "x-yandex-captcha": "captcha"}, page("yandex_showcaptcha.html"), url=YANDEX_URL),
        "yandex_captcha",
        pause("captcha_solve", "yandex_captcha", "yandex"),
        id="yandex-showcaptcha-page",
    ),
    pytest.param(
        obs(429, HTML, page("google_sorry.html"), url=GOOGLE_SORRY_URL),
        "google_unusual_traffic",
        pause("captcha_solve", "google_unusual_traffic", "google"),
        id="google-sorry-429-is-a-captcha-not-a-rate-limit",
    ),
    pytest.param(
        obs(302, {"location": GOOGLE_SORRY_URL}, url="https://www.google.com/search?q=scrapy+middleware&hl=en"),
        "google_unusual_traffic",
        pause("captcha_solve", "google_unusual_traffic", "google"),
        id="google-redirect-to-sorry",
    ),
    pytest.param(
        obs(200, AMAZON, page("amazon_captcha.html"), url="https://www.amazon.com/dp/B0BSHF7WHW"),
        "amazon_captcha",
        pause("captcha_solve", "amazon_captcha", "amazon"),
        id="amazon-robot-check",
    ),
    # --- generic captcha widgets -------------------------------------------------------------
    pytest.param(
        obs(200, HTML, page("contact_form_recaptcha.html"), url="https://acme.example.com/contact"),
        None,
        Verdict.ok(),
        id="recaptcha-on-contact-form-200-ok",
    ),
    pytest.param(
        obs(200, HTML, page("contact_form_recaptcha.html"), url="https://acme.example.com/contact", can_escalate=True),
        None,
        Verdict.ok(),
        id="recaptcha-on-contact-form-200-ok-even-with-tiers-left",
    ),
    pytest.param(
        obs(200, HTML, page("recaptcha_interstitial.html")),
        "recaptcha_interstitial",
        pause("captcha_solve", "recaptcha_interstitial", "recaptcha"),
        id="recaptcha-security-check-interstitial-200",
    ),
    pytest.param(
        obs(403, HTML, page("contact_form_recaptcha.html")),
        "recaptcha_challenge",
        pause("captcha_solve", "recaptcha_challenge", "recaptcha"),
        id="recaptcha-on-403",
    ),
    pytest.param(
        obs(200, HTML, page("hcaptcha_interstitial.html")),
        "hcaptcha_interstitial",
        pause("captcha_solve", "hcaptcha_interstitial", "hcaptcha"),
        id="hcaptcha-one-more-step-interstitial",
    ),
    pytest.param(
        obs(429, HTML, page("hcaptcha_blocked.html"), can_escalate=True),
        "hcaptcha_challenge",
        Verdict.escalate("hcaptcha_challenge", "hcaptcha"),
        id="hcaptcha-on-429-beats-rate-limit",
    ),
    pytest.param(
        obs(200, HTML, page("login_turnstile.html"), url="https://forum.example.org/login"),
        None,
        Verdict.ok(),
        id="turnstile-on-login-form-200-ok",
    ),
    pytest.param(
        obs(403, HTML, page("turnstile_blocked.html")),
        "turnstile_challenge",
        pause("captcha_solve", "turnstile_challenge", "turnstile"),
        id="turnstile-on-403",
    ),
    pytest.param(
        obs(200, HTML, page("turnstile_blocked.html").replace("Listings | Example Homes", "Verifying you are human")),
        "turnstile_interstitial",
        pause("captcha_solve", "turnstile_interstitial", "turnstile"),
        id="turnstile-interstitial-200",
    ),
    pytest.param(
        obs(200, HTML, page("smartcaptcha_interstitial.html")),
        "smartcaptcha_interstitial",
        pause("captcha_solve", "smartcaptcha_interstitial", "yandex"),
        id="yandex-smartcaptcha-interstitial",
    ),
    pytest.param(
        obs(503, HTML, page("smartcaptcha_interstitial.html").replace("Security check | ", "")),
        "smartcaptcha_challenge",
        pause("captcha_solve", "smartcaptcha_challenge", "yandex"),
        id="yandex-smartcaptcha-on-503",
    ),
    # --- Sucuri ------------------------------------------------------------------------------
    pytest.param(
        obs(403, SUCURI, page("sucuri_access_denied.html")),
        "sucuri_access_denied",
        pause("manual_access", "hard_block", "sucuri"),
        id="sucuri-access-denied",
    ),
    pytest.param(
        obs(200, SUCURI, page("sucuri_js_challenge.html"), can_escalate=True),
        "sucuri_js_challenge",
        Verdict.escalate("sucuri_js_challenge", "sucuri"),
        id="sucuri-js-soft-block-escalates",
    ),
    pytest.param(
        obs(200, SUCURI, page("sucuri_js_challenge.html")),
        "sucuri_js_challenge",
        Verdict.ok(),
        id="sucuri-js-soft-block-ok-without-tiers",
    ),
    pytest.param(
        obs(200, SUCURI, page("sucuri_js_challenge.html"), can_escalate=True, expect_missing=True),
        "sucuri_js_challenge",
        Verdict.escalate("sucuri_js_challenge", "sucuri"),
        id="soft-block-names-the-cause-over-missing-selector",
    ),
    # --- a page script refusing an automated browser (the browser tier's soft block) ---------
    pytest.param(
        obs(200, HTML, page("automation_detected.html"), can_escalate=True, rendered=True, expect_missing=True),
        "automation_detected",
        Verdict.escalate("automation_detected", "custom"),
        id="automation-detected-on-browser-goes-to-stealth",
    ),
    pytest.param(
        obs(200, HTML, page("automation_detected.html"), rendered=True, expect_missing=True),
        "automation_detected",
        Verdict.pause("manual_access", "automation_detected", "custom"),
        id="automation-detected-on-top-tier-asks-a-human-not-a-selector-fix",
    ),
    pytest.param(
        obs(200, HTML, page("automation_detected.html"), rendered=True),
        "automation_detected",
        Verdict.ok(),
        id="automation-detected-without-expectation-or-tier-is-let-through",
    ),
    # --- in-page refusals: the site's own title, the verdict in the body ------------------------
    pytest.param(
        obs(200, HTML, page("botd_refusal_rendered.html"), can_escalate=True, rendered=True, expect_missing=True),
        "automation_refused",
        Verdict.escalate("automation_refused", "generic"),
        id="botd-refusal-rendered-on-browser-goes-to-stealth",
    ),
    pytest.param(
        obs(200, HTML, page("botd_refusal_rendered.html"), rendered=True, expect_missing=True),
        "automation_refused",
        pause("captcha_solve", "automation_refused", "generic"),
        id="botd-refusal-on-top-tier-asks-a-human",
    ),
    pytest.param(
        obs(200, HTML, page("botd_refusal_rendered.html"), rendered=True),
        "automation_refused",
        pause("captcha_solve", "automation_refused", "generic"),
        id="botd-refusal-on-top-tier-without-expectation-still-asks-a-human",
    ),
    pytest.param(
        obs(200, HTML, page("botd_page_static.html"), can_escalate=True, expect_missing=True),
        None,
        Verdict.escalate("selector_missing"),
        id="botd-page-before-its-script-ran-its-strings-are-not-a-refusal",
    ),
    pytest.param(
        obs(200, HTML, page("imperva_interruption_site_title.html"), can_escalate=True),
        "imperva_interruption",
        Verdict.escalate("imperva_interruption", "imperva"),
        id="pardon-our-interruption-with-the-site-title-escalates",
    ),
    pytest.param(
        obs(200, HTML, page("imperva_interruption_site_title.html")),
        "imperva_interruption",
        pause("captcha_solve", "imperva_interruption", "imperva"),
        id="pardon-our-interruption-with-the-site-title",
    ),
    pytest.param(
        obs(200, {"content-type": "text/html"}, page("incapsula_incident_site_title.html")),
        "imperva_incident",
        pause("captcha_solve", "imperva_incident", "imperva"),
        id="incapsula-incident-without-imperva-headers",
    ),
    pytest.param(
        obs(200, HTML, page("datadome_js_check_site_title.html"), can_escalate=True, expect_missing=True),
        "datadome_js_check",
        Verdict.escalate("datadome_js_check", "datadome"),
        id="datadome-enable-js-on-200-without-datadome-headers",
    ),
    pytest.param(
        obs(200, HTML, page("perimeterx_refusal_site_title.html"), rendered=True, expect_missing=True),
        "perimeterx_refusal",
        pause("captcha_solve", "perimeterx_refusal", "perimeterx"),
        id="perimeterx-automation-tools-refusal-on-top-tier",
    ),
    pytest.param(
        obs(200, HTML, page("human_verification_site_title.html"), can_escalate=True),
        "human_verification",
        Verdict.escalate("human_verification", "generic"),
        id="verifying-you-are-human-with-the-site-title",
    ),
    pytest.param(
        obs(403, HTML, page("human_verification_site_title.html")),
        "human_verification",
        pause("captcha_solve", "human_verification", "generic"),
        id="verifying-you-are-human-on-403-is-a-captcha-not-manual-access",
    ),
    pytest.param(
        obs(200, HTML, page("article_bot_detection.html"), can_escalate=True, rendered=True),
        None,
        Verdict.ok(),
        id="big-article-quoting-every-refusal-is-content",
    ),
    pytest.param(
        obs(200, HTML, page("faq_bot_detected_small.html"), can_escalate=True),
        None,
        Verdict.ok(),
        id="small-help-page-headed-bot-detected-shows-too-much-text",
    ),
    pytest.param(
        obs(200, HTML, page("app_refusal_strings_in_script.html"), can_escalate=True, rendered=True),
        None,
        Verdict.ok(),
        id="refusal-strings-in-a-script-are-not-shown",
    ),
    pytest.param(
        obs(200, HTML, page("product_inline_bot_script_small.html"), can_escalate=True),
        None,
        Verdict.ok(),
        id="small-product-page-whose-script-could-write-bot-detected-is-content",
    ),
    pytest.param(
        obs(200, HTML, page("product_inline_bot_script_small.html"), rendered=True, expect_met=True),
        None,
        Verdict.ok(),
        id="small-product-page-with-its-data-on-the-top-tier-pauses-nothing",
    ),
    pytest.param(
        obs(200, HTML, page("article_robot_detected_mars.html"), can_escalate=True, rendered=True),
        None,
        Verdict.ok(),
        id="article-headed-robot-detected-on-mars-is-content",
    ),
    pytest.param(
        obs(200, HTML, page("quiz_are_you_a_robot.html"), can_escalate=True, rendered=True),
        None,
        Verdict.ok(),
        id="are-you-a-robot-quiz-is-content",
    ),
    pytest.param(
        obs(200, HTML, page("signup_template_verify_human.html"), can_escalate=True, rendered=True),
        None,
        Verdict.ok(),
        id="verify-you-are-human-in-a-template-is-not-shown",
    ),
    # The spider's expectation met: a generic refusal is not the page. On the same page without
    # it, the refusal climbs and asks a human as in the rows above.
    pytest.param(
        obs(200, HTML, page("botd_refusal_rendered.html"), rendered=True, expect_met=True),
        None,
        Verdict.ok(),
        id="botd-refusal-with-the-expected-data-present-is-content",
    ),
    pytest.param(
        obs(200, HTML, page("human_verification_site_title.html"), expect_met=True),
        None,
        Verdict.ok(),
        id="verifying-you-are-human-with-the-expected-data-present-is-content",
    ),
    pytest.param(
        obs(200, HTML, page("human_verification_site_title.html"), expect_missing=True),
        "human_verification",
        pause("captcha_solve", "human_verification", "generic"),
        id="verifying-you-are-human-with-the-expected-data-missing-asks-a-human",
    ),
    pytest.param(
        obs(200, HTML, page("hcaptcha_interstitial.html"), expect_met=True),
        "hcaptcha_interstitial",
        pause("captcha_solve", "hcaptcha_interstitial", "hcaptcha"),
        id="vendor-markup-wins-over-a-met-expectation",
    ),
]


@pytest.mark.parametrize(("observation", "signature", "expected"), SIGNATURE_CASES)
def test_vendor_pages(observation: Observation, signature: str | None, expected: Verdict) -> None:
    assert classify(observation) == expected
    matched = DEFAULT.match(observation)
    assert (matched.name if matched else None) == signature


def test_every_default_signature_has_a_realistic_case() -> None:
    covered = {param.values[1] for param in SIGNATURE_CASES}
    assert {signature.name for signature in DEFAULT_SIGNATURES} <= covered


STATUS_CASES = [
    pytest.param(obs(0, network_error="TimeoutError"), Verdict.retry("timeout_error"), id="timeout"),
    pytest.param(
        obs(0, network_error="twisted.internet.error.DNSLookupError"), Verdict.retry("dns_lookup_error"), id="dns"
    ),
    pytest.param(obs(0, network_error="TCPTimedOutError"), Verdict.retry("tcp_timed_out_error"), id="tcp-timeout"),
    pytest.param(
        obs(0, network_error="ResponseNeverReceived", has_session=True, can_escalate=True),
        Verdict.retry("response_never_received"),
        id="never-received-never-a-human",
    ),
    pytest.param(obs(429, {**HTML, "retry-after": "30"}, "Too Many Requests"), Verdict.retry("rate_limited"), id="429"),
    pytest.param(
        obs(503, {**HTML, "retry-after": "120"}, "<h1>Down for maintenance</h1>"),
        Verdict.retry("service_unavailable"),
        id="503-retry-after",
    ),
    pytest.param(obs(503, HTML, "<h1>Service Unavailable</h1>"), Verdict.retry("http_503"), id="503-bare"),
    pytest.param(obs(500, HTML, "<h1>Internal Server Error</h1>"), Verdict.retry("http_500"), id="500"),
    pytest.param(obs(502, {"server": "nginx/1.25.3"}, "<h1>502 Bad Gateway</h1>"), Verdict.retry("http_502"), id="502"),
    pytest.param(obs(408, HTML), Verdict.retry("http_408"), id="408"),
    pytest.param(obs(401, {"www-authenticate": 'Bearer realm="api"'}), pause("login_refresh", "http_401"), id="401"),
    pytest.param(
        obs(401, {"www-authenticate": 'Basic realm="intranet"'}, has_session=True),
        pause("login_refresh", "http_401"),
        id="401-with-session",
    ),
    pytest.param(obs(403, HTML, "<h1>Forbidden</h1>"), pause("manual_access", "http_403"), id="403"),
    pytest.param(
        obs(403, HTML, "<h1>Forbidden</h1>", has_session=True),
        pause("login_refresh", "http_403_with_session"),
        id="403-with-session",
    ),
    pytest.param(
        obs(403, HTML, "<h1>Forbidden</h1>", can_escalate=True),
        pause("manual_access", "http_403"),
        id="403-plain-does-not-escalate",
    ),
    pytest.param(obs(404, HTML, "<h1>Not Found</h1>"), Verdict.fail("http_404"), id="404"),
    pytest.param(obs(410, HTML), Verdict.fail("http_410"), id="410"),
    pytest.param(obs(400, HTML), Verdict.fail("http_400"), id="400"),
    pytest.param(obs(304, {}), Verdict.ok(), id="304"),
    pytest.param(obs(301, {"location": "https://www.example.com/products/42/"}), Verdict.ok(), id="plain-redirect"),
    pytest.param(obs(204, {}), Verdict.ok(), id="204"),
    pytest.param(
        obs(200, HTML, page("contact_form_recaptcha.html"), expect_missing=True),
        pause("selector_fix", "selector_missing"),
        id="selector-missing",
    ),
    pytest.param(
        obs(200, HTML, page("contact_form_recaptcha.html"), expect_missing=True, can_escalate=True),
        Verdict.escalate("selector_missing"),
        id="selector-missing-escalates",
    ),
    pytest.param(obs(200, HTML, "", can_escalate=True), Verdict.escalate("empty_body"), id="empty-body"),
    pytest.param(
        obs(200, HTML, "<!DOCTYPE html><html><head><title></title></head><body>\n</body></html>", can_escalate=True),
        Verdict.escalate("empty_body"),
        id="near-empty-html",
    ),
    pytest.param(obs(200, HTML, ""), Verdict.ok(), id="empty-body-without-tiers-ok"),
    pytest.param(
        obs(200, {"content-type": "application/json"}, "", can_escalate=True), Verdict.ok(), id="empty-json-ok"
    ),
    pytest.param(
        obs(200, HTML, page("app_shell_cra.html"), can_escalate=True),
        Verdict.escalate("js_required"),
        id="react-app-shell",
    ),
    pytest.param(
        obs(200, HTML, page("app_shell_angular.html"), can_escalate=True),
        Verdict.escalate("js_required"),
        id="angular-app-shell-with-inline-css",
    ),
    pytest.param(obs(200, HTML, page("app_shell_angular.html")), Verdict.ok(), id="app-shell-without-tiers-ok"),
    pytest.param(
        obs(
            200,
            HTML,
            page("article_cloudflare.html").replace("<noscript><iframe", "<noscript>Please enable JavaScript.<iframe"),
            can_escalate=True,
        ),
        Verdict.ok(),
        id="enable-js-noscript-on-a-page-with-text-ok",
    ),
]


@pytest.mark.parametrize(("observation", "expected"), STATUS_CASES)
def test_status_table(observation: Observation, expected: Verdict) -> None:
    assert classify(observation) == expected


@pytest.mark.parametrize(
    "location",
    [
        "/login?next=%2Faccount%2Forders",
        "https://www.example.com/users/sign_in",
        "https://www.example.com/account/login",
        "https://www.example.com/sign-in?return_to=%2Fcart",
        "https://www.example.com/wp-login.php?redirect_to=https%3A%2F%2Fwww.example.com%2Fwp-admin%2F&reauth=1",
        "https://login.example.com/oauth2/authorize?client_id=web&response_type=code",
        "https://sso.example.com/auth/realms/acme/protocol/openid-connect/auth?client_id=portal",
        "/?next=/orders/1234",
    ],
)
def test_redirect_to_login(location: str) -> None:
    observation = obs(302, {"location": location, "content-type": "text/html"}, has_session=True)
    assert classify(observation) == pause("login_refresh", "login_redirect")


@pytest.mark.parametrize(
    "location",
    [
        "https://www.example.com/authors/jane-keller",
        "https://www.example.com/blog/signing-in-safely",
        "/products/42?ref=home",
        "https://cdn.example.com/files/catalog-2024.pdf",
    ],
)
def test_redirect_elsewhere_is_ok(location: str) -> None:
    assert classify(obs(301, {"location": location})) == Verdict.ok()


# --- user signatures -----------------------------------------------------------------------


def test_user_signature_is_checked_before_the_defaults() -> None:
    classifier = BlockClassifier.from_settings_value(
        [
            {
                "name": "acme_cloudflare_wall",
                "vendor": "cloudflare",
                "kind": "hard_block",
                "headers": {"cf-mitigated": "^challenge$"},
            }
        ]
    )
    observation = obs(403, CF_CHALLENGE, page("cloudflare_challenge.html"))
    assert classifier.match(observation).name == "acme_cloudflare_wall"
    assert classifier.classify(observation) == pause("manual_access", "hard_block", "cloudflare")
    assert classify(observation) == pause("captcha_solve", "cloudflare_challenge", "cloudflare")


def test_user_rate_limit_signature_on_a_200_page() -> None:
    classifier = BlockClassifier.from_settings_value(
        [
            {
                "name": "acme_too_many_requests",
                "vendor": "acme",
                "kind": "rate_limit",
                "status": 200,
                "url": r"^https://shop\.acme\.example/",
                "require": ["url", "title"],
                "title": "(?i)^too many requests",
            }
        ]
    )
    body = "<html><head><title>Too many requests - Acme Shop</title></head><body>Slow down.</body></html>"
    observation = obs(200, HTML, body, url="https://shop.acme.example/c/tools?page=9", can_escalate=True)
    assert classifier.classify(observation) == Verdict.retry("rate_limited", vendor="acme")
    other_shop = obs(200, HTML, body, url="https://shop.other.example/c/tools?page=9")
    assert classifier.classify(other_shop) == Verdict.ok()


def test_a_user_soft_block_does_not_hide_a_default_challenge() -> None:
    classifier = BlockClassifier.from_settings_value(
        [{"name": "acme_soft", "kind": "soft_block", "headers": {"server": "(?i)cloudflare"}}]
    )
    observation = obs(403, CF_CHALLENGE, page("cloudflare_challenge.html"))
    assert classifier.match(observation).name == "cloudflare_challenge"
    assert classifier.classify(observation) == pause("captcha_solve", "cloudflare_challenge", "cloudflare")
    normal = obs(200, CLOUDFLARE, page("article_cloudflare.html"), can_escalate=True)
    assert classifier.classify(normal) == Verdict.escalate("acme_soft", "custom")


def test_no_user_signatures_means_the_defaults() -> None:
    assert BlockClassifier.from_settings_value(None).signatures == DEFAULT_SIGNATURES
    assert BlockClassifier.from_settings_value([]).signatures == DEFAULT_SIGNATURES


def kind_error(got: str) -> str:
    return f'field "kind" must be one of challenge, hard_block, soft_block, rate_limit; got {got}.'


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        pytest.param(
            [{"name": "ok_one", "kind": "challenge", "body": "x"}, {}],
            'HITL_BLOCK_SIGNATURES[1]: field "name" must be snake_case',
            id="missing-name-index-1",
        ),
        pytest.param(
            [{"name": "ok_one", "kind": "challenge", "body": "x"}, {"name": "ok_two", "kind": "challenge", "body": "y"},
             {"name": "my_waf", "kind": "captcha", "body": "x"}],
            'HITL_BLOCK_SIGNATURES[2] ("my_waf"): ' + kind_error('"captcha"'),
            id="bad-kind",
        ),
        pytest.param([{"name": "my_waf", "body": "x"}], kind_error("None"), id="missing-kind"),
        pytest.param(
            [{"name": "My WAF", "kind": "challenge", "body": "x"}],
            'HITL_BLOCK_SIGNATURES[0] ("My WAF"): field "name" must be snake_case (lower-case letters, digits and '
            'underscores; it becomes a stats key); got "My WAF".',
            id="name-not-snake-case",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "header": {"x-waf": ""}}],
            'HITL_BLOCK_SIGNATURES[0] ("my_waf"): field "header" is unknown; the fields are name, vendor, kind, '
            "status, "
            "headers, cookies, body, url, title, require, max_body, max_text.",
            id="typo-in-field-name",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "status": "403", "body": "x"}],
            'field "status" must be an HTTP status, a list of them, or null for any; got "403".',
            id="status-as-string",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "status": [403, 999], "body": "x"}],
            'field "status" must hold HTTP statuses (ints from 100 to 599); got 999.',
            id="status-out-of-range",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "body": "(unclosed"}],
            'field "body" has an invalid regular expression "(unclosed": missing ), unterminated subpattern',
            id="bad-regex",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "body": ["Access denied", ""]}],
            'field "body" must hold non-empty regular expressions (strings); got "".',
            id="empty-body-regex",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "cookies": [42]}],
            'field "cookies" must hold non-empty regular expressions (strings); got 42.',
            id="cookie-not-a-string",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "hard_block", "status": 403}],
            'HITL_BLOCK_SIGNATURES[0] ("my_waf"): no patterns; give at least one of the fields headers, cookies, body, '
            "url, title (a signature without patterns would match every response).",
            id="no-patterns",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "headers": {"x-waf": ""}, "require": ["body"]}],
            'field "require" names "body", but that group is empty; add patterns or drop it.',
            id="require-empty-group",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "body": "x", "require": ["cookie"]}],
            "field \"require\" must be a list of group names among headers, cookies, body, url, title; got ['cookie'].",
            id="require-unknown-group",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "headers": ["x-waf"]}],
            'field "headers" must be a dict of header name to regex, e.g. {"x-iinfo": ""}; got [\'x-waf\'].',
            id="headers-as-list",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "body": "x", "max_body": -1}],
            'field "max_body" must be a number of characters (an int >= 0) or null; got -1.',
            id="negative-max-body",
        ),
        pytest.param(
            [{"name": "my_waf", "kind": "challenge", "body": "x", "max_text": "short"}],
            'field "max_text" must be a number of characters (an int >= 0) or null; got "short".',
            id="max-text-not-a-number",
        ),
        pytest.param(
            ["my_waf"], "HITL_BLOCK_SIGNATURES[0]: each signature must be a dict; got str.", id="entry-not-a-dict"
        ),
        pytest.param(
            {"name": "my_waf", "kind": "challenge", "body": "x"},
            "HITL_BLOCK_SIGNATURES must be a list of dicts, one per signature; got dict.",
            id="setting-is-a-dict",
        ),
    ],
)
def test_bad_user_signatures(specs, message: str) -> None:
    with pytest.raises(SignatureError) as excinfo:
        BlockClassifier.from_settings_value(specs)
    assert message in str(excinfo.value)


# --- matching rules --------------------------------------------------------------------------

RULES = compile_signature(
    {
        "name": "rules",
        "vendor": "acme",
        "kind": "challenge",
        "require": ["headers", "body"],
        "headers": {"x-acme-waf": ""},
        "body": "acme-challenge",
        "title": "^Checking$",
        "cookies": "^acme_bm$",
    },
    index=0,
)


@pytest.mark.parametrize(
    ("headers", "body", "matches"),
    [
        pytest.param({"x-acme-waf": "1"}, "<title>Checking</title> acme-challenge", True, id="required-and-title"),
        pytest.param(
            {"x-acme-waf": "1", "set-cookie": "acme_bm=1; path=/"}, "acme-challenge", True, id="required-and-cookie"
        ),
        pytest.param({"x-acme-waf": "1"}, "acme-challenge", False, id="required-but-no-other-group"),
        pytest.param({}, "<title>Checking</title> acme-challenge", False, id="required-header-missing"),
        pytest.param({"x-acme-waf": "1"}, "<title>Checking</title>", False, id="required-body-missing"),
    ],
)
def test_require_means_all_of_require_and_any_of_the_rest(headers, body, matches: bool) -> None:
    classifier = BlockClassifier([RULES])
    assert (classifier.match(obs(403, headers, body)) is not None) is matches


def test_big_2xx_bodies_are_only_scanned_on_a_title_or_url_hint() -> None:
    marker = compile_signature({"name": "marker", "kind": "challenge", "body": "acme-challenge"}, index=0)
    classifier = BlockClassifier([marker])
    filler = "<p>" + "Plenty of real content. " * 500 + "</p>"
    assert classifier.match(obs(200, HTML, "<html>acme-challenge</html>")) is marker
    assert classifier.match(obs(200, HTML, f"<html>acme-challenge{filler}</html>")) is None
    assert classifier.match(obs(403, HTML, f"<html>acme-challenge{filler}</html>")) is marker
    hinted = compile_signature(
        {
            "name": "hinted",
            "kind": "challenge",
            "require": ["title", "body"],
            "title": "^Check$",
            "body": "acme-challenge",
        },
        index=0,
    )
    big = f"<html><head><title>Check</title></head>acme-challenge{filler}</html>"
    assert BlockClassifier([hinted]).match(obs(200, HTML, big)) is hinted


def test_max_body_limits_a_signature_to_small_pages() -> None:
    small_only = compile_signature({"name": "small", "kind": "challenge", "body": "gate", "max_body": 100}, index=0)
    classifier = BlockClassifier([small_only])
    assert classifier.match(obs(403, HTML, "gate")) is small_only
    assert classifier.match(obs(403, HTML, "gate" + " " * 200)) is None


@pytest.mark.parametrize(
    ("body", "matches"),
    [
        pytest.param("<body><h1>Denied</h1><script>var t = 'x'.repeat(500);</script></body>", True,
                     id="scripts-do-not-count"),
        pytest.param("<body><h1>Denied</h1><p>" + "word " * 30 + "</p></body>", False, id="text-does"),
        pytest.param("<body><h1>Denied</h1><p>" + " \n " * 300 + "</p></body>", True, id="whitespace-does-not"),
    ],
)
def test_max_text_limits_a_signature_to_pages_that_show_little(body: str, matches: bool) -> None:
    signature = compile_signature({"name": "terse", "kind": "challenge", "body": ">Denied<", "max_text": 50}, index=0)
    assert (BlockClassifier([signature]).match(obs(200, HTML, body)) is signature) is matches


def _site_page(element: str) -> str:
    return f"<!DOCTYPE html><html><head><title>Garden Chairs | Example Shop</title></head><body>{element}</body></html>"


@pytest.mark.parametrize(
    ("element", "signature"),
    [
        pytest.param("<h1>Bot detected.</h1>", "automation_refused", id="bot-detected"),
        pytest.param("<p>\n  Automation detected. Access denied\n</p>", "automation_refused", id="and-a-statement"),
        pytest.param("<h2>Headless Chrome detected</h2>", "automation_refused", id="headless-chrome"),
        pytest.param("<h1>Robot detected on Mars</h1>", None, id="words-go-on"),
        pytest.param('<a href="/b">Bots detected on your site?</a>', None, id="link-text-asks"),
        pytest.param("<h1>Bot detected: what now?</h1>", None, id="heading-asks-after-a-colon"),
        pytest.param("<p>Access denied. Bot detected.</p>", None, id="phrase-does-not-start-the-text"),
        pytest.param("<script>document.body.innerHTML='<h1>Bot detected</h1>'</script>", None, id="in-a-script"),
        pytest.param("<!-- <h1>Bot detected</h1> -->", None, id="in-a-comment"),
        pytest.param("<noscript><h1>Bot detected</h1></noscript>", None, id="in-noscript"),
        pytest.param("<h1>Are you a robot?</h1>", None, id="a-question-alone"),
        pytest.param("<template><p>Please verify you are human</p></template>", None, id="in-a-template"),
        pytest.param("<p>Please verify you&#39;re not a robot.</p>", "human_verification", id="not-a-robot"),
        pytest.param("<p>Verify you are human by completing the action below.</p>", "human_verification",
                     id="verify-by-completing"),
        pytest.param("<p>Sorry, we just need to make sure you\u2019re not a robot. For best results, please make "
                     "sure your browser is accepting cookies.</p>", "human_verification", id="make-sure"),
        pytest.param("<h1>Pardon Our Interruption</h1>", "imperva_interruption", id="pardon"),
        pytest.param("<h1>Pardon our interruption: the site is moving</h1><p>Back on Monday.</p>", None,
                     id="pardon-is-imperva-only-alone"),
        pytest.param("<h3>Pardon our interruption?</h3>", None, id="pardon-asked"),
        pytest.param("<p>Please enable JS and disable any ad blocker</p>", "datadome_js_check", id="datadome"),
    ],
)
def test_an_in_page_refusal_is_the_whole_text_of_its_element(element: str, signature: str | None) -> None:
    matched = DEFAULT.match(obs(200, HTML, _site_page(element)))
    assert (matched.name if matched else None) == signature


def test_observation_rejects_an_expectation_both_met_and_missing() -> None:
    with pytest.raises(ValueError, match="expect_met and expect_missing"):
        obs(200, HTML, expect_met=True, expect_missing=True)


def test_cookie_names_are_read_from_joined_set_cookie_values() -> None:
    signature = compile_signature({"name": "px", "kind": "challenge", "cookies": "^_px3$"}, index=0)
    joined = "_pxvid=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; path=/\n_px3=abc; path=/; Secure"
    assert BlockClassifier([signature]).match(obs(403, {"set-cookie": joined})) is signature
    assert BlockClassifier([signature]).match(obs(403, {"set-cookie": "_pxvid=1; _px3=x"})) is None


# --- value objects ---------------------------------------------------------------------------


def test_verdict_constructors() -> None:
    assert Verdict.ok() == Verdict("ok")
    assert Verdict.retry("http_500") == Verdict("retry", None, "http_500", None)
    assert Verdict.escalate("js_required") == Verdict("escalate", None, "js_required", None)
    assert Verdict.pause("captcha_solve", "recaptcha_challenge", "recaptcha").type == "captcha_solve"
    assert Verdict.fail("http_404").action == "fail"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("maybe",), "Verdict.action must be one of ok, retry, escalate, pause, fail; got 'maybe'."),
        (("pause", "captcha"), "Verdict.type must be one of manual_access"),
        (("pause", None), "Verdict.type must be one of manual_access"),
        (("retry", "login_refresh"), "when pausing and None otherwise"),
    ],
)
def test_verdict_rejects_nonsense(args, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        Verdict(*args)


def test_observation_rejects_an_unknown_access_class() -> None:
    with pytest.raises(ValueError, match="access_class must be one of public, infra, human; got 'vip'"):
        obs(200, access_class="vip")


# The escalate-or-fix decision for a missing hitl_expect selector (issue 13): climb before
# blaming the selector. Any page below the top automated tier climbs, rendered or not, with
# scripts or without (a bot detector may have written its refusal into a page that kept the
# site's title); only a miss on the top automated tier is the selector's fault.
SHELL = "<html><head><title>Quotes</title></head><body><div id='app'></div><script>render()</script></body></html>"
NOSCRIPT = "<html><head><title>Quotes</title></head><body><noscript>Enable JavaScript</noscript></body></html>"
PLAIN = "<html><head><title>Quotes</title></head><body><p>" + "Plain text. " * 40 + "</p></body></html>"
REFUSED = ("<html><head><title>Quotes to Scrape</title></head><body><div class='container'>"
           "<p>Sorry, we could not show this page.</p></div></body></html>")


@pytest.mark.parametrize(
    ("body", "can_escalate", "rendered", "expected"),
    [
        (SHELL, True, False, Verdict.escalate("selector_missing")),
        (NOSCRIPT, True, False, Verdict.escalate("selector_missing")),
        (PLAIN, True, False, Verdict.escalate("selector_missing")),
        (SHELL, True, True, Verdict.escalate("selector_missing")),
        (REFUSED, True, True, Verdict.escalate("selector_missing")),
        (SHELL, False, False, Verdict.pause("selector_fix", "selector_missing")),
        (REFUSED, False, True, Verdict.pause("selector_fix", "selector_missing")),
        (PLAIN, False, False, Verdict.pause("selector_fix", "selector_missing")),
    ],
    ids=["script-climbs", "noscript-climbs", "no-scripts-climbs", "rendered-climbs",
         "rendered-refusal-climbs", "top-tier-is-a-selector-fix", "top-tier-rendered-is-a-selector-fix",
         "top-tier-plain-is-a-selector-fix"],
)
def test_missing_selector_climbs_until_the_top_automated_tier(
    body: str, can_escalate: bool, rendered: bool, expected: Verdict
) -> None:
    observation = obs(200, HTML, body, expect_missing=True, can_escalate=can_escalate, rendered=rendered)
    assert classify(observation) == expected


@pytest.mark.parametrize("body", [SHELL, ""], ids=["app-shell", "empty"])
def test_a_rendered_page_is_never_escalated_for_looking_empty(body: str) -> None:
    assert classify(obs(200, HTML, body, can_escalate=True, rendered=True)) == Verdict.ok()


def test_a_sampled_out_page_skips_the_shell_heuristics_but_not_the_signatures() -> None:
    shell = obs(200, HTML, page("app_shell_cra.html"), can_escalate=True, shell_check=False)
    assert classify(shell) == Verdict.ok()
    soft = obs(200, SUCURI, page("sucuri_js_challenge.html"), can_escalate=True, shell_check=False)
    assert classify(soft) == Verdict.escalate("sucuri_js_challenge", "sucuri")
    missing = obs(200, HTML, SHELL, expect_missing=True, can_escalate=True, shell_check=False)
    assert classify(missing) == Verdict.escalate("selector_missing")
