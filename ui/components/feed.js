// How a live part's page follows its feed (ui/live_feed.py), shared by the live chart and the live status.
//
// feedFollower(name, onContent, hiddenEvery) returns follow(url, version, every): from then on the page asks
// `url` every `every` seconds (the pace each answer sets; null: stop asking), sending the version it has;
// an answer with newer content calls onContent(content). Asks keep their pace from one ask to the next,
// however long an answer took to come; a failed ask is tried again after 2 s; a part no longer published
// (404) is not asked again until the page's next rerun says what to follow, or a sibling asks it to
// (follow.now, on a "pareto:follow-now" message; `follow.kickedAfter` seconds later where the page set it).
//
// A page in the background (another tab in front, a minimised window: document.hidden, which a frame shares
// with its page) draws nothing a person sees, so its asks come at least `hiddenEvery` seconds apart, or not at
// all when `hiddenEvery` is null, and it asks at once when it is shown again. The status line keeps asking (its
// asks keep the run watched: a run no page looks at stops at its idle limit); the charts wait.
window.feedFollower = function (name, onContent, hiddenEvery) {
  "use strict";
  let feed = null, version = null, timer = null, asking = false, again = null, parked = false;
  let following = false;  // the last answer set a pace: the part follows a live run
  const waitsHidden = hiddenEvery === null || hiddenEvery === undefined;

  function later(seconds) {
    clearTimeout(timer);
    timer = null;
    parked = false;
    if (seconds === null || seconds === undefined || !feed) return;
    if (document.hidden && waitsHidden) {
      parked = true;  // asked again when the page is shown (below)
      return;
    }
    timer = setTimeout(ask, 1000 * (document.hidden ? Math.max(seconds, hiddenEvery) : seconds));
  }

  async function ask() {
    const asked = feed, began = performance.now();
    let every = 2;
    timer = null;
    asking = true;
    try {
      const r = await fetch(asked + (version ? "?have=" + encodeURIComponent(version) : ""), {cache: "no-store"});
      if (asked !== feed) {
        // The page published anew meanwhile: its follow() set the pace; this answer is of the old feed.
      } else if (r.status === 200) {
        const answer = await r.json();
        version = answer.version;
        every = answer.every;
        following = every !== null && every !== undefined;
        onContent(answer.content);
      } else if (r.status === 204) {
        const e = r.headers.get("X-Every");
        every = e === null || e === "" ? null : Number(e);
        following = every !== null;
      } else if (r.status === 404) {
        every = null;
        following = false;
      }
    } catch (err) {
      console.error(name + ":", err);
    }
    asking = false;
    if (again !== null && feed) {  // told to ask while this ask was under way: what it was told may be newer
      const after = again;
      again = null;
      later(after);
    } else if (asked === feed) {
      later(every === null || every === undefined ? null : Math.max(0.05, every - (performance.now() - began) / 1000));
    }
  }

  function follow(url, have, every) {
    feed = url || null;
    version = have || null;
    later(feed ? every : null);
  }
  // Ask at once (the part may have just been published: see `askSiblingsNow`).
  follow.now = function () {
    if (asking) again = 0;  // one ask at a time: two would carry the same version and both get a figure
    else if (feed) later(0);
  };
  // Whoever asks this window to, by a "pareto:follow-now" message: a page's other live parts, when the
  // page has just published their feeds anew (a run started) without a rerun that would tell them. A part
  // that matters less in a run's first second (a line of a few points) asks `kickedAfter` seconds later.
  follow.kickedAfter = 0;
  window.addEventListener("message", function (event) {
    if (!event.data || event.data.type !== "pareto:follow-now") return;
    // A part that follows a live run already asks at once, as it always did: the word may be of a newer run.
    if (following || !(follow.kickedAfter > 0)) follow.now();
    else if (asking) again = again === 0 ? 0 : follow.kickedAfter;
    else if (feed) later(follow.kickedAfter);
  });
  // Hidden: a chart's next ask waits until the page is shown (one already under way parks after its answer).
  // Shown again: what a person now sees catches up at once, not at the background's pace.
  document.addEventListener("visibilitychange", function () {
    if (document.hidden) {
      if (waitsHidden && timer !== null) {
        clearTimeout(timer);
        timer = null;
        parked = true;
      }
    } else if (parked || timer !== null) {
      follow.now();
    }
  });
  return follow;
};

// Tell every live part of the page (the frames beside this one) to ask its feed at once.
window.askSiblingsNow = function () {
  "use strict";
  const frames = window.parent.frames;
  for (let i = 0; i < frames.length; i++) {
    if (frames[i] !== window) frames[i].postMessage({type: "pareto:follow-now"}, "*");
  }
};
