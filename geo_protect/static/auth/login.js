// The login form: POST /auth/login, then back to the page that asked (same origin only).
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("login");
  const problem = document.getElementById("problem");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    problem.hidden = true;
    const body = JSON.stringify({
      user: document.getElementById("user").value.trim(),
      password: document.getElementById("password").value,
    });
    let response;
    try {
      response = await fetch("/auth/login", {
        method: "POST", body, credentials: "same-origin",
        headers: { "Content-Type": "application/json" },
      });
    } catch (err) {
      problem.textContent = "The service does not answer; try again.";
      problem.hidden = false;
      return;
    }
    if (response.ok) {
      const next = form.dataset.next || "/";
      window.location.assign(next.startsWith("/") && !next.startsWith("//") ? next : "/");
      return;
    }
    const detail = await response.json().catch(() => ({}));
    problem.textContent = response.status === 429
      ? `Too many failed logins: wait ${response.headers.get("Retry-After") || "a while"} s.`
      : (typeof detail.detail === "string" ? detail.detail : "Login failed.");
    problem.hidden = false;
  });
});
