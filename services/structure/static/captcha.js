/* « Nouveau code » of the bot challenge (templates/structure/_captcha.html) without leaving the page.
 *
 * Without JavaScript, « Nouveau code » is a link that reloads the form (what was typed is lost).
 * This script puts a button in its place that asks for a new challenge
 * (POST data-new-captcha-url, i.e. /structure/api/captchas?registration_id=…) and swaps, in place:
 *   - the image, for the one the answer carries (a data URL: no second request);
 *   - the audio player's source, for the new challenge's (nothing is loaded until it is played);
 *   - the hidden captcha_id, so that the form sends the answer for the new challenge;
 * then empties the answer field and says in the polite live region #captcha-annonce that the
 * image and the audio have changed (or why no new code could be had). The other fields are
 * left as they are, and the focus stays on the button.
 */
(function () {
  "use strict";

  var DONE = "Nouveau code affiché : l'image et le code audio ont changé. Saisissez les nouveaux caractères.";

  function problemText(status) {
    if (status === 429) {
      return "Trop de nouveaux codes demandés en peu de temps : patientez une minute avant d'en redemander un.";
    }
    if (status === 404) {
      return "Ce formulaire a expiré : rechargez la page pour obtenir un nouveau code.";
    }
    return "Aucun nouveau code n'a pu être obtenu. Réessayez dans quelques instants, ou rechargez la page.";
  }

  function attach(box) {
    var link = box.querySelector("#nouvelle-image");
    var image = box.querySelector("img");
    var audio = box.querySelector("audio");
    var download = audio && audio.querySelector("a");
    var captchaId = box.querySelector("input[name=captcha_id]");
    var answer = box.querySelector("#captcha");
    var announce = box.querySelector("#captcha-annonce");
    var explanation = box.querySelector("#nouveau-code-aide");
    if (!link || !image || !audio || !captchaId || !answer || !announce) { return; }

    var button = document.createElement("button");
    button.type = "button";
    button.className = "button secondary";
    button.id = link.id;
    button.textContent = link.textContent;
    link.replaceWith(button);
    if (explanation) {
      explanation.textContent = "(les informations saisies sont conservées)";
    }

    function say(text) {
      // Emptied first: the same words said twice in a row are announced again.
      announce.textContent = "";
      window.setTimeout(function () { announce.textContent = text; }, 50);
    }

    button.addEventListener("click", function () {
      if (button.getAttribute("aria-disabled") === "true") { return; }
      button.setAttribute("aria-disabled", "true");
      fetch(box.getAttribute("data-new-captcha-url"), {
        method: "POST",
        headers: { Accept: "application/json" },
        credentials: "same-origin"
      })
        .then(function (response) {
          if (!response.ok) { throw response.status; }
          return response.json();
        })
        .then(function (challenge) {
          audio.pause();
          audio.src = challenge.audio_url;
          if (download) { download.href = challenge.audio_url; }
          image.src = challenge.image;
          captchaId.value = challenge.captcha_id;
          answer.value = "";
          say(DONE);
        })
        .catch(function (status) {
          say(problemText(typeof status === "number" ? status : 0));
        })
        .then(function () {
          button.removeAttribute("aria-disabled");
        });
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll(".captcha[data-new-captcha-url]"), attach);
})();
