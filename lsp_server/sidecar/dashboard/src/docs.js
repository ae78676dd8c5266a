// The offline API docs: Swagger UI (served by this server) with the credential
// the user pastes, kept in session storage and shared with the dashboard.
const STORAGE_KEY = "ai-ide-credential";
const config = JSON.parse(document.body.dataset.config);

function authHeaders(secret) {
  return secret.startsWith("aiide_") ? { "X-API-Key": secret } : { Authorization: `Bearer ${secret}` };
}

function show(secret) {
  sessionStorage.setItem(STORAGE_KEY, secret);
  document.getElementById("refused").textContent = "";
  window.SwaggerUIBundle({
    url: config.url,
    dom_id: "#swagger-ui",
    // No badge from the public validator: the page talks to this server only.
    validatorUrl: null,
    requestInterceptor: (request) => {
      Object.assign(request.headers, authHeaders(secret));
      return request;
    },
    responseInterceptor: (response) => {
      if (response.status === 401 && response.url.endsWith(config.url)) {
        sessionStorage.removeItem(STORAGE_KEY);
        document.getElementById("refused").textContent = "The server refused this credential.";
      }
      return response;
    },
  });
}

document.getElementById("credential").addEventListener("submit", (event) => {
  event.preventDefault();
  show(document.getElementById("secret").value.trim());
});
const saved = sessionStorage.getItem(STORAGE_KEY);
if (saved) show(saved);
