/* « Je n'ai pas de numéro de SIRET » on the step-1 page: the format of the type chosen.
 *
 * Without JavaScript the hint under the identifier field (#identifier-aide) lists the format of
 * every type. This script shows only the chosen type's (the others get `hidden`) and points the
 * field's aria-describedby at that one item (and at the field's error, if any), so that a screen
 * reader reads the format that applies; it follows every change of #identifier_type.
 */
(function () {
  "use strict";

  var select = document.getElementById("identifier_type");
  var input = document.getElementById("identifier");
  var formats = document.getElementById("identifier-aide");
  if (!select || !input || !formats) {
    return;
  }
  var intro = formats.querySelector(".identifier-formats-intro");
  var items = formats.querySelectorAll("[data-identifier-type]");
  var error = document.getElementById("identifier-erreur");

  function showChosen() {
    var chosen = null;
    Array.prototype.forEach.call(items, function (item) {
      var matches = item.getAttribute("data-identifier-type") === select.value;
      item.hidden = !matches;
      if (matches) {
        chosen = item;
      }
    });
    if (!chosen) {
      return;
    }
    if (intro) {
      intro.hidden = true;
    }
    input.setAttribute("aria-describedby", chosen.id + (error ? " " + error.id : ""));
  }

  select.addEventListener("change", showChosen);
  showChosen();
})();
