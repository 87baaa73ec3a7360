/* « Je ne connais pas mon SIRET » on the step-1 page: suggestions while typing.
 *
 * Without JavaScript the search box is a plain GET form (#company-search-form, to
 * /structure/entreprises) whose results page links back to step 1 with the SIRET filled in.
 * This script turns its `q` field into a combobox with a listbox popup (WAI-ARIA 1.2, the APG
 * "combobox with list autocomplete" pattern):
 *   - role=combobox, aria-autocomplete=list, aria-expanded, aria-controls on the input; the
 *     options (role=option) are never focused: aria-activedescendant points at the active one;
 *   - from 3 characters, GET /structure/api/companies?q=… (debounced; the postal code and the
 *     city narrow it once well formed); the polite live region #company-search-status says how
 *     many establishments were found, or why nothing can be shown;
 *   - Down / Up arrows move through the options (and open the list), Enter chooses the active
 *     one, Escape closes the list (or, closed, empties the field); a click chooses too;
 *   - choosing an open establishment writes its SIRET into the step-1 field #siret and moves
 *     the focus there; a closed one is listed (aria-disabled) but cannot be chosen.
 * Enter with no active option submits the form as without JavaScript.
 */
(function () {
  "use strict";

  var MIN_CHARACTERS = 3;
  var DEBOUNCE_MS = 300;
  var ENDPOINT = "/structure/api/companies";
  var MASKED = "[ND]";

  function formatSiret(siret) {
    return /^\d{14}$/.test(siret) ? siret.replace(/^(\d{3})(\d{3})(\d{3})(\d{5})$/, "$1 $2 $3 $4") : siret;
  }

  function companyName(hit) {
    return !hit.company_name || hit.company_name === MASKED ? "Entreprise non diffusible" : hit.company_name;
  }

  function place(hit) {
    return [hit.address, [hit.postal_code, hit.city].filter(Boolean).join(" ")]
      .filter(function (part) { return part && part !== MASKED; })
      .join(", ");
  }

  function countText(found) {
    var total = found.total.toLocaleString("fr-FR");
    if (found.total === 0) {
      return "Aucun établissement trouvé. Vérifiez l'orthographe, ou recherchez le numéro SIREN.";
    }
    var browse = " Parcourez la liste avec les flèches haut et bas, choisissez avec Entrée.";
    if (found.total > found.results.length) {
      return total + " établissements trouvés, les " + found.results.length + " premiers sont proposés :" +
        " précisez avec le code postal ou la ville si le vôtre n'y est pas." + browse;
    }
    return found.total === 1 ? "1 établissement trouvé." + browse : total + " établissements trouvés." + browse;
  }

  function problemText(status, body) {
    if (status === 422 && body && body.message) { return body.message; }
    if (status === 429) { return "Trop de recherches en peu de temps : patientez une minute avant de reprendre."; }
    if (body && body.message) { return body.message; }
    return "La recherche d'entreprises est momentanément indisponible. Réessayez dans quelques minutes.";
  }

  function attach(form, input, status, siretField) {
    var container = input.closest("details") || form;
    var postalCode = form.elements.namedItem("postal_code");
    var city = form.elements.namedItem("city");
    var listbox = document.createElement("ul");
    var hits = [];
    var active = -1;
    var timer = null;
    var pending = null;
    var asked = "";

    listbox.id = input.id + "-suggestions";
    listbox.setAttribute("role", "listbox");
    listbox.setAttribute("aria-label", "Établissements trouvés");
    listbox.hidden = true;
    input.parentNode.insertBefore(listbox, input.nextSibling);
    input.parentNode.classList.add("combobox");

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("aria-controls", listbox.id);
    input.setAttribute("autocomplete", "off");

    function say(text) {
      status.textContent = text;
    }

    function option(index) {
      return document.getElementById(listbox.id + "-" + index);
    }

    function open() {
      if (hits.length) {
        listbox.hidden = false;
        input.setAttribute("aria-expanded", "true");
      }
    }

    function close() {
      listbox.hidden = true;
      input.setAttribute("aria-expanded", "false");
      activate(-1);
    }

    function activate(index) {
      var previous = option(active);
      if (previous) {
        previous.classList.remove("active");
        previous.setAttribute("aria-selected", "false");
      }
      active = index;
      var current = option(active);
      if (!current) {
        input.removeAttribute("aria-activedescendant");
        return;
      }
      current.classList.add("active");
      current.setAttribute("aria-selected", "true");
      input.setAttribute("aria-activedescendant", current.id);
      current.scrollIntoView({ block: "nearest" });
    }

    function move(step) {
      if (!hits.length) { return; }
      open();
      var next = active < 0 ? (step > 0 ? 0 : hits.length - 1) : (active + step + hits.length) % hits.length;
      activate(next);
    }

    function choose(index) {
      var hit = hits[index];
      if (!hit) { return; }
      if (!hit.open) {
        say("Cet établissement est fermé : il ne peut pas servir à créer un compte. Choisissez un établissement ouvert.");
        return;
      }
      close();
      siretField.value = formatSiret(hit.siret);
      siretField.dispatchEvent(new Event("input", { bubbles: true }));
      siretField.focus();
      say("Numéro de SIRET " + formatSiret(hit.siret) + " de " + companyName(hit) + " reporté dans le champ Numéro de SIRET.");
    }

    function show(found) {
      hits = found.results;
      listbox.textContent = "";
      active = -1;
      input.removeAttribute("aria-activedescendant");
      hits.forEach(function (hit, index) {
        var item = document.createElement("li");
        item.id = listbox.id + "-" + index;
        item.setAttribute("role", "option");
        item.setAttribute("aria-selected", "false");
        if (!hit.open) { item.setAttribute("aria-disabled", "true"); }
        [
          [companyName(hit), "company-name"],
          [place(hit), ""],
          ["SIRET " + formatSiret(hit.siret) + " — " + (hit.open ? "Ouvert" : "Fermé : ne peut être choisi"),
           "company-state"],
        ].forEach(function (line) {
          if (!line[0]) { return; }
          var span = document.createElement("span");
          span.textContent = line[0];
          if (line[1]) { span.className = line[1]; }
          item.appendChild(span);
        });
        item.addEventListener("click", function () { choose(index); });
        listbox.appendChild(item);
      });
      if (hits.length) { open(); } else { close(); }
      say(countText(found));
    }

    function query() {
      var params = new URLSearchParams({ q: input.value.trim() });
      if (postalCode && /^\d{5}$/.test(postalCode.value.trim())) { params.set("postal_code", postalCode.value.trim()); }
      if (city && city.value.trim()) { params.set("city", city.value.trim()); }
      return params.toString();
    }

    function search() {
      var text = input.value.trim();
      var asking = query();
      if (text.length < MIN_CHARACTERS) {
        if (pending) { pending.abort(); pending = null; }
        asked = "";
        hits = [];
        listbox.textContent = "";
        close();
        say("");
        return;
      }
      if (asking === asked) { open(); return; }
      if (pending) { pending.abort(); }
      var controller = new AbortController();
      pending = controller;
      asked = asking;
      fetch(ENDPOINT + "?" + asking, { headers: { Accept: "application/json" }, signal: controller.signal })
        .then(function (answer) {
          return answer.json().catch(function () { return null; }).then(function (body) {
            if (controller !== pending) { return; }
            pending = null;
            if (answer.ok && body) { show(body); return; }
            asked = "";
            hits = [];
            listbox.textContent = "";
            close();
            say(problemText(answer.status, body));
          });
        })
        .catch(function (error) {
          if (error.name === "AbortError" || controller !== pending) { return; }
          pending = null;
          asked = "";
          close();
          say(problemText(0, null));
        });
    }

    function later() {
      window.clearTimeout(timer);
      timer = window.setTimeout(search, DEBOUNCE_MS);
    }

    input.addEventListener("input", function () {
      activate(-1);
      later();
    });
    [postalCode, city].forEach(function (field) {
      if (field) { field.addEventListener("input", later); }
    });

    input.addEventListener("keydown", function (event) {
      if (event.altKey && event.key === "ArrowDown") {
        open();
        event.preventDefault();
      } else if (event.key === "ArrowDown") {
        move(1);
        event.preventDefault();
      } else if (event.key === "ArrowUp") {
        move(-1);
        event.preventDefault();
      } else if (event.key === "Enter") {
        if (!listbox.hidden && active >= 0) {
          event.preventDefault();  // choose the option, do not submit the form
          choose(active);
        }
      } else if (event.key === "Escape") {
        if (!listbox.hidden) {
          close();
        } else {
          input.value = "";
          search();
        }
        event.preventDefault();
      }
    });

    // A click on an option must not take the focus from the input before it counts.
    listbox.addEventListener("mousedown", function (event) { event.preventDefault(); });

    container.addEventListener("focusout", function (event) {
      if (!event.relatedTarget || !container.contains(event.relatedTarget)) { close(); }
    });
  }

  function start() {
    var form = document.getElementById("company-search-form");
    var status = document.getElementById("company-search-status");
    var siretField = document.getElementById("siret");
    var input = form && form.elements.namedItem("q");
    if (!input || !status || !siretField || !window.fetch) { return; }
    attach(form, input, status, siretField);
  }

  start();
})();
