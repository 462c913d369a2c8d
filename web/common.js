/* What both pages share: the text that says why a request to the app failed. */
(function () {
  "use strict";

  // "503 Service Unavailable: <the problem's detail>" from an application/problem+json answer.
  async function failure(response) {
    let detail = "";
    try {
      const problem = await response.json();
      detail = problem.detail || problem.title || "";
    } catch (ignored) { /* not a problem document */ }
    return `${response.status} ${response.statusText || ""}`.trim() + (detail ? `: ${detail}` : "");
  }

  window.offerloop = { failure };
})();
