/* Live strength meter of the activation page (step 4).
 *
 * It applies the shape of the server's rule (services/activate/domain.py `password_errors`, the
 * authority): the password is normalised with NFKC, then counted in code points, at least 8 and
 * at most 128; it must hold at least 3 of the 4 groups: ASCII upper case A-Z, ASCII lower case
 * a-z, digits 0-9, and anything else (punctuation, accented letters, spaces…); no control
 * character. The server also refuses common passwords and those built from the person's names or
 * email (services/activate/passwords.py): that list stays on the server, and the page says so
 * next to the field.
 *
 * Levels (data-level on .meter):
 *   0  nothing typed yet                                            « Insuffisant »
 *   1  refused: neither the length nor the 3 groups, or too long,
 *      or a control character                                       « Insuffisant »
 *   2  refused: the length or the 3 groups, not both                « Faible »
 *   3  the rule's shape is met                                      « Satisfaisant »
 *   4  met, at least 12 characters and all 4 groups                 « Très satisfaisant »
 * So: level >= 3 exactly when the password has the shape the server requires (the server may
 * still refuse it as too common or too personal).
 *
 * Without JavaScript the meter stays hidden; the rule is written next to the field anyway.
 * The bar's width is set through element.style, which the CSP (style-src 'self') allows.
 */
(function () {
  "use strict";

  var MIN_LENGTH = 8;
  var MAX_LENGTH = 128;
  var MIN_GROUPS = 3;
  var STRONG_LENGTH = 12;
  var ALL_GROUPS = 4;
  var LABELS = ["Insuffisant", "Insuffisant", "Faible", "Satisfaisant", "Très satisfaisant"];
  var CONTROL = /\p{Cc}/u;

  function groups(chars) {
    var upper = false, lower = false, digit = false, special = false;
    chars.forEach(function (c) {
      if (c >= "A" && c <= "Z") { upper = true; }
      else if (c >= "a" && c <= "z") { lower = true; }
      else if (c >= "0" && c <= "9") { digit = true; }
      else { special = true; }
    });
    return upper + lower + digit + special;
  }

  function passwordLevel(password) {
    if (!password) { return 0; }
    var normalised = password.normalize("NFKC");
    var chars = Array.from(normalised);  // code points, as Python's len()
    var count = groups(chars);
    if (chars.length > MAX_LENGTH || CONTROL.test(normalised)) { return 1; }
    var longEnough = chars.length >= MIN_LENGTH;
    var mixedEnough = count >= MIN_GROUPS;
    if (longEnough && mixedEnough) {
      return chars.length >= STRONG_LENGTH && count === ALL_GROUPS ? 4 : 3;
    }
    return longEnough || mixedEnough ? 2 : 1;
  }

  function attach(meter, input) {
    var label = meter.querySelector(".meter-label");
    var note = meter.querySelector(".meter-note");
    var bar = meter.querySelector(".meter-bar span");
    var shown = -1;

    function update() {
      var level = passwordLevel(input.value);
      bar.style.width = (level * 25) + "%";
      if (level === shown) { return; }  // the live region speaks only when the level changes
      shown = level;
      meter.setAttribute("data-level", String(level));
      label.textContent = LABELS[level];
      note.textContent = level >= 3 ? "" : " (la règle n'est pas encore respectée)";
    }

    input.addEventListener("input", update);
    meter.hidden = false;
    update();
  }

  if (typeof module === "object" && module.exports) {
    module.exports = { passwordLevel: passwordLevel, LABELS: LABELS };
  }
  if (typeof document !== "undefined") {
    var meter = document.getElementById("password-meter");
    var input = document.getElementById("password");
    if (meter && input) { attach(meter, input); }
  }
}());
