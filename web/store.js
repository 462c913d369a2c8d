/* Loop & Co., offerloop's demo storefront. The catalog comes embedded in the page (#catalog); the
   page asks the app for offers (GET offers) and related products (GET products/{id}/related), and
   posts what the shopper does as CloudEvents 1.0 (POST events; types and data as shared/events.py
   validates them). URLs are relative: this page is /api/store. Errors go to the status line, never
   to the console: the browser tests fail on console errors. */
(function () {
  "use strict";

  const SOURCE = "/offerloop/store";
  const VIEWED = "offerloop.product.viewed";
  const CART_ADDED = "offerloop.cart.added";
  const OFFER_CLICKED = "offerloop.offer.clicked";
  const SHOPPER_KEY = "offerloop.store.shopper";
  const CART_KEY = "offerloop.store.cart";
  const OFFERS = 3;
  const RELATED = 6;
  const PAGE_SIZE = 48;
  const KINDS = { category_discount: "Category discount", product_deal: "Product deal",
                  free_shipping: "Free shipping", bundle: "Bundle" };

  const $ = (id) => document.getElementById(id);
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
  const errors = new Map();  // what failed, by channel ("offers", "events", ...), until it works again
  const storage = {  // localStorage may be unavailable (privacy modes): then the shopper lasts one page
    get(key) { try { return window.localStorage.getItem(key); } catch (ignored) { return null; } },
    set(key, value) { try { window.localStorage.setItem(key, value); } catch (ignored) { /* this page only */ } },
  };
  const catalog = readCatalog();
  const products = new Map(catalog.products.map((p) => [p.id, p]));
  const categories = [...new Set(catalog.products.map((p) => p.category))].sort();
  let shopper = loadShopper();
  let cart = loadCart();
  let current = { product: null, category: "", limit: PAGE_SIZE };
  let offersAsked = 0;  // only the answer to the latest offers request is shown

  // ---------- small helpers ----------

  function el(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    const b = window.crypto.getRandomValues(new Uint8Array(16));  // randomUUID needs a secure context
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }


  function showError(channel, message) {
    errors.set(channel, message);
    renderStatus();
  }

  function clearError(channel) {
    if (errors.delete(channel)) renderStatus();
  }

  function renderStatus() {
    const status = $("status");
    status.textContent = [...errors.values()].join(" · ");
    status.className = errors.size ? "status error" : "status";
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(await window.offerloop.failure(response));
    return response.json();
  }

  // ---------- the shopper, the cart and their events ----------

  function readCatalog() {
    try {
      const parsed = JSON.parse($("catalog").textContent);
      return { products: parsed.products || [], offers: parsed.offers || [] };
    } catch (error) {
      showError("catalog", `The catalog could not be read (${error.message}).`);
      return { products: [], offers: [] };
    }
  }

  function newShopperId() {
    return "web-" + uuid().replace(/-/g, "").slice(0, 12);
  }

  function loadShopper() {
    let id = storage.get(SHOPPER_KEY);
    if (!id || !/^web-[A-Za-z0-9-]{1,100}$/.test(id)) {
      id = newShopperId();
      storage.set(SHOPPER_KEY, id);
    }
    return id;
  }

  function loadCart() {
    try {
      const saved = JSON.parse(storage.get(CART_KEY) || "null");
      return saved && saved.shopper === shopper ? saved.items : 0;
    } catch (ignored) {
      return 0;
    }
  }

  function device() {
    if (!window.matchMedia("(pointer: coarse)").matches) return "desktop";
    return Math.min(window.screen.width, window.screen.height) >= 768 ? "tablet" : "mobile";
  }

  function cloudEvent(type, data) {
    return { specversion: "1.0", id: uuid(), source: SOURCE, type, subject: shopper, time: new Date().toISOString(),
             dataschema: `urn:offerloop:${type.replace(/^offerloop\./, "")}:1`, datacontenttype: "application/json",
             data };
  }

  // keepalive: an event posted just before the shopper leaves the page still arrives.
  async function post(events) {
    const response = await fetch("events", { method: "POST", keepalive: true, body: JSON.stringify(events),
                                             headers: { "Content-Type": "application/cloudevents-batch+json" } });
    if (!response.ok) throw new Error(await window.offerloop.failure(response));
  }

  async function record(event, what) {
    try {
      await post([event]);
      clearError("events");
      return true;
    } catch (error) {
      showError("events", `${what} was not recorded (${error.message}).`);
      return false;
    }
  }

  // ---------- rendering ----------

  // Each category its own colour: the golden angle apart around the hue circle.
  function hue(category) {
    let index = categories.indexOf(category);
    if (index < 0) for (const c of category) index = (index * 31 + c.charCodeAt(0)) % 360;
    return String(Math.round((index * 137.508) % 360));
  }

  function thumb(product) {
    const words = product.name.split(/\s+/).filter(Boolean);
    const box = el("div", "thumb", words.slice(-2).map((w) => w[0]).join("").toUpperCase());
    box.style.setProperty("--hue", hue(product.category));
    box.setAttribute("aria-hidden", "true");
    return box;
  }

  function card(product, className) {
    const link = el("a", className);
    link.href = "#product=" + encodeURIComponent(product.id);
    link.dataset.productId = product.id;
    link.append(thumb(product), el("span", "product-name", product.name),
                el("span", "product-meta", `${product.category} · ${product.brand}`),
                el("span", "price", money.format(product.price)));
    return link;
  }

  function renderTabs() {
    const tabs = [["", "All"], ...categories.map((c) => [c, c])].map(([category, label]) => {
      const tab = el("a", "category-tab", label);
      tab.href = category ? "#category=" + encodeURIComponent(category) : "#";
      tab.dataset.category = category;
      return tab;
    });
    $("category-tabs").replaceChildren(...tabs);
  }

  function showGrid(category) {
    if (category !== current.category || current.product) current.limit = PAGE_SIZE;
    current = { product: null, category, limit: current.limit };
    const list = category ? catalog.products.filter((p) => p.category === category) : catalog.products;
    $("product-grid").replaceChildren(...list.slice(0, current.limit).map((p) => card(p, "product-card")));
    if (!list.length) $("product-grid").append(el("p", "placeholder", "No products here."));
    $("show-more").hidden = list.length <= current.limit;
    for (const tab of document.querySelectorAll(".category-tab")) {
      tab.classList.toggle("active", tab.dataset.category === category);
    }
    $("product-page").hidden = true;
    $("catalog-view").hidden = false;
  }

  function showProduct(product) {
    current = { product, category: product.category, limit: PAGE_SIZE };
    const page = $("product-page");
    $("product-thumb").replaceWith(Object.assign(thumb(product), { id: "product-thumb" }));
    $("product-name").textContent = product.name;
    $("product-brand").textContent = product.brand;
    $("product-price").textContent = money.format(product.price);
    const category = $("product-category");
    category.textContent = product.category;
    category.href = "#category=" + encodeURIComponent(product.category);
    $("cart-confirmation").textContent = "";
    $("related").replaceChildren(el("p", "placeholder", "Looking for related products…"));
    page.dataset.productId = product.id;
    $("catalog-view").hidden = true;
    $("show-more").hidden = true;
    page.hidden = false;
    for (const tab of document.querySelectorAll(".category-tab")) {
      tab.classList.toggle("active", tab.dataset.category === product.category);
    }
    window.scrollTo(0, 0);
  }

  function renderOffers(answer) {
    const offers = (answer.offers || []).map((offer) => {
      const button = el("button", "offer");
      button.type = "button";
      button.dataset.offerId = offer.offerId;
      button.dataset.category = offer.category || "";
      button.dataset.kind = offer.kind || "";
      const terms = [KINDS[offer.kind] || offer.kind, offer.category,
                     offer.discountPercent ? `${offer.discountPercent} % off` : null,
                     offer.minBasket ? `on orders over ${money.format(offer.minBasket)}` : null].filter(Boolean);
      button.append(el("span", "title", offer.title), el("span", "meta", terms.join(" · ")));
      button.addEventListener("click", () => clickOffer(offer, answer.eventId, button));
      return button;
    });
    $("offers").replaceChildren(...(offers.length ? offers : [el("p", "placeholder", "No offers for you right now.")]));
  }

  // ---------- what the shopper does ----------

  async function refreshOffers(productId) {
    const asked = ++offersAsked;
    let url = `offers?userId=${encodeURIComponent(shopper)}&n=${OFFERS}`;
    if (productId) url += `&productId=${encodeURIComponent(productId)}`;
    try {
      const answer = await getJSON(url);
      if (asked !== offersAsked) return;
      renderOffers(answer);
      clearError("offers");
    } catch (error) {
      if (asked !== offersAsked) return;
      $("offers").replaceChildren(el("p", "placeholder", "No offers right now."));
      showError("offers", `Offers are unavailable (${error.message}).`);
    }
  }

  async function loadRelated(product) {
    try {
      const answer = await getJSON(`products/${encodeURIComponent(product.id)}/related?n=${RELATED}`);
      if (current.product !== product) return;
      const items = (answer.related || []).map((r) => {
        const known = products.get(r.productId) || { id: r.productId, name: r.name, category: r.category,
                                                     brand: r.brand || "", price: r.price };
        products.set(known.id, known);  // a related product beyond the embedded ones can be opened too
        return card(known, "related-card");
      });
      $("related").replaceChildren(...(items.length ? items
        : [el("p", "placeholder", "No related products yet: they come with the next retrain.")]));
      clearError("related");
    } catch (error) {
      if (current.product !== product) return;
      $("related").replaceChildren(el("p", "placeholder", "Related products are unavailable."));
      showError("related", `Related products are unavailable (${error.message}).`);
    }
  }

  // A product view: show it, record the view, then ask for offers with the view recorded and the
  // related products in. The banner is emptied meanwhile, so it never shows another page's offers.
  function viewProduct(product) {
    showProduct(product);
    $("offers").replaceChildren(el("p", "placeholder", "Finding offers for you…"));
    $("offer-confirmation").textContent = "";
    const viewed = record(cloudEvent(VIEWED, { productId: product.id, category: product.category,
                                               price: product.price, device: device() }), "Your view");
    Promise.all([viewed, loadRelated(product)]).then(() => refreshOffers(product.id));
  }

  async function clickOffer(offer, decisionId, button) {
    const clicked = await record(cloudEvent(OFFER_CLICKED, { offerId: offer.offerId, decisionId }), "Your click");
    if (clicked) {
      button.classList.add("chosen");
      $("offer-confirmation").textContent = `Offer saved: ${offer.title}. It applies at checkout.`;
    }
  }

  async function addToCart() {
    const product = current.product;
    if (!product) return;
    const added = await record(cloudEvent(CART_ADDED, { productId: product.id, category: product.category,
                                                       price: product.price, quantity: 1 }), "Your cart");
    if (added) {
      cart += 1;
      storage.set(CART_KEY, JSON.stringify({ shopper, items: cart }));
      $("cart-count").textContent = String(cart);
      $("cart-confirmation").textContent = `Added ${product.name} to your cart.`;
    }
  }

  function newShopper() {
    shopper = newShopperId();
    storage.set(SHOPPER_KEY, shopper);
    cart = 0;
    storage.set(CART_KEY, JSON.stringify({ shopper, items: 0 }));
    $("shopper-id").textContent = shopper;
    $("cart-count").textContent = "0";
    $("offer-confirmation").textContent = `You are a new shopper now: ${shopper}.`;
    refreshOffers(current.product ? current.product.id : null);
  }

  function route() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    const id = params.get("product");
    if (id === null) {
      showGrid(params.get("category") || "");
      return false;
    }
    const product = products.get(id);
    if (!product) {
      showError("route", `There is no product ${id} in this store.`);
      showGrid("");
      return false;
    }
    clearError("route");
    viewProduct(product);
    return true;
  }

  $("shopper-id").textContent = shopper;
  $("cart-count").textContent = String(cart);
  $("new-shopper").addEventListener("click", newShopper);
  $("add-to-cart").addEventListener("click", addToCart);
  $("show-more").addEventListener("click", () => {
    current.limit += PAGE_SIZE;
    showGrid(current.category);
  });
  window.addEventListener("hashchange", route);
  renderTabs();
  if (!route()) refreshOffers(null);
})();
