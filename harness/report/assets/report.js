/* The report page: draws the plots and the item explorer from the JSON data block.
   Every text from a run is put on the page with textContent or createTextNode, never as
   markup, and nothing from a run becomes a link or an attribute that runs code. When the
   first render is done (the explorer, and the figures in view), <html data-ready="true"
   data-ready-ms="..."> marks it; window.harnessFigures.drawAll() draws the rest at once. */
(function () {
  "use strict";

  var root = document.documentElement;
  var status = document.getElementById("report-status");
  var OUTCOME = {
    both: "both right",
    teacher: "teacher only",
    student: "student only",
    neither: "both wrong",
    ungraded: "not graded"
  };
  var FLIP = { a_only: "A right, B wrong", b_only: "A wrong, B right", same: "unchanged", unpaired: "not in B" };

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function add(parent) {
    for (var i = 1; i < arguments.length; i++) {
      var child = arguments[i];
      if (child === null || child === undefined) continue;
      parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return parent;
  }

  function option(select, value, label) {
    var o = el("option", null, label);
    o.value = value;
    select.appendChild(o);
  }

  function readData() {
    var block = document.getElementById("report-data");
    return JSON.parse(block.textContent);
  }

  /* Large runs: the items and texts are one gzip member (base64), unpacked here. */
  function unpack(data) {
    if (!data.packed) return Promise.resolve(data);
    var bin = atob(data.packed);
    var bytes = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).text().then(function (s) {
      var inner = JSON.parse(s);
      data.items = inner.items;
      data.texts = inner.texts;
      data.packed = null;
      return data;
    });
  }

  /* Figures are drawn when they come near the viewport (a big report opens faster), all of
     them before printing; the promise resolves once those in view at load are drawn. */
  function Figures(data) {
    this.pending = {};
    this.config = { displaylogo: false, responsive: true };
    var self = this;
    data.figures.forEach(function (f) {
      var node = document.getElementById(f.id);
      if (node) self.pending[f.id] = { node: node, figure: f.figure };
    });
    window.addEventListener("beforeprint", function () { self.drawAll(); });
  }

  Figures.prototype.draw = function (id) {
    var f = this.pending[id];
    if (!f || !window.Plotly) return Promise.resolve();
    delete this.pending[id];
    return window.Plotly.newPlot(f.node, f.figure.data, f.figure.layout || {}, this.config);
  };

  Figures.prototype.drawAll = function () {
    return Promise.all(Object.keys(this.pending).map(this.draw, this));
  };

  Figures.prototype.start = function () {
    var self = this;
    if (!("IntersectionObserver" in window)) return this.drawAll();
    return new Promise(function (resolve) {
      var first = true;
      var observer = new IntersectionObserver(function (entries) {
        var jobs = [];
        entries.forEach(function (e) {
          if (e.isIntersecting) {
            observer.unobserve(e.target);
            jobs.push(self.draw(e.target.id));
          }
        });
        if (first) {
          first = false;
          Promise.all(jobs).then(resolve, resolve);
        }
      }, { rootMargin: "300px" });
      Object.keys(self.pending).forEach(function (id) { observer.observe(self.pending[id].node); });
      if (!Object.keys(self.pending).length) resolve();
    });
  };

  /* --- the explorer ------------------------------------------------------------------ */

  function Explorer(data, texts) {
    this.data = data;
    this.texts = texts;
    this.items = data.items;
    this.compare = !!data.other;
    this.page = 0;
    this.pageSize = data.page_size || 50;
    this.selected = -1;
    this.family = {};
    for (var i = 0; i < this.items.length; i++) {
      var it = this.items[i];
      var key = it.t + "|" + (it.p || it.id) + "|" + it.s;
      (this.family[key] = this.family[key] || []).push(i);
    }
    this.list = document.getElementById("item-list");
    this.detail = document.getElementById("item-detail");
    this.count = document.getElementById("item-count");
    this.pageInfo = document.getElementById("page-info");
    this.filters = {
      task: document.getElementById("filter-task"),
      outcome: document.getElementById("filter-outcome"),
      depth: document.getElementById("filter-depth"),
      kind: document.getElementById("filter-kind"),
      cause: document.getElementById("filter-cause"),
      flip: document.getElementById("filter-flip"),
      search: document.getElementById("filter-search")
    };
    this.fillFilters();
    var self = this;
    Object.keys(this.filters).forEach(function (name) {
      var node = self.filters[name];
      if (!node) return;
      node.addEventListener(name === "search" ? "input" : "change", function () {
        self.page = 0;
        self.apply();
      });
    });
    document.getElementById("page-prev").addEventListener("click", function () {
      if (self.page > 0) { self.page--; self.renderList(); }
    });
    document.getElementById("page-next").addEventListener("click", function () {
      if ((self.page + 1) * self.pageSize < self.shown.length) { self.page++; self.renderList(); }
    });
    this.list.addEventListener("click", function (ev) {
      var row = ev.target.closest ? ev.target.closest(".item-row") : null;
      if (row) self.open(Number(row.dataset.index));
    });
    this.apply();
  }

  Explorer.prototype.text = function (i) {
    return i === null || i === undefined ? null : this.texts[i];
  };

  Explorer.prototype.fillFilters = function () {
    var data = this.data;
    data.tasks.forEach(function (t, i) { option(this.filters.task, String(i), t); }, this);
    var depths = {}, kinds = {}, causes = {};
    this.items.forEach(function (it) {
      depths[it.d === null || it.d === undefined ? "none" : String(it.d)] = true;
      kinds[it.k || "original"] = true;
      causes[it.f || "-"] = true;
    });
    Object.keys(depths)
      .sort(function (a, b) { return (a === "none") - (b === "none") || Number(a) - Number(b); })
      .forEach(function (d) { option(this.filters.depth, d, d); }, this);
    Object.keys(kinds).sort().forEach(function (k) { option(this.filters.kind, k, k); }, this);
    Object.keys(causes).sort().forEach(function (c) {
      option(this.filters.cause, c, c === "-" ? "(not a failure)" : c.replace(/_/g, " "));
    }, this);
  };

  Explorer.prototype.matches = function (it, f) {
    if (f.task !== "" && it.t !== Number(f.task)) return false;
    if (f.outcome === "truncated") {
      if (!it.tr) return false;
    } else if (f.outcome !== "" && it.o !== f.outcome) {
      return false;
    }
    if (f.depth !== "" && (it.d === null || it.d === undefined ? "none" : String(it.d)) !== f.depth) return false;
    if (f.kind !== "" && (it.k || "original") !== f.kind) return false;
    if (f.cause !== "" && (it.f || "-") !== f.cause) return false;
    if (f.flip === "flipped") {
      if (it.fl !== "a_only" && it.fl !== "b_only") return false;
    } else if (f.flip && it.fl !== f.flip) {
      return false;
    }
    if (f.search && it.id.toLowerCase().indexOf(f.search) < 0) return false;
    return true;
  };

  Explorer.prototype.apply = function () {
    var F = this.filters;
    var f = {
      task: F.task.value,
      outcome: F.outcome.value,
      depth: F.depth.value,
      kind: F.kind.value,
      cause: F.cause.value,
      flip: F.flip ? F.flip.value : "",
      search: F.search.value.trim().toLowerCase()
    };
    var shown = [];
    for (var i = 0; i < this.items.length; i++) if (this.matches(this.items[i], f)) shown.push(i);
    this.shown = shown;
    this.count.textContent = shown.length + " of " + this.items.length + " items";
    this.count.dataset.count = String(shown.length);
    this.renderList();
  };

  Explorer.prototype.renderList = function () {
    var start = this.page * this.pageSize;
    var slice = this.shown.slice(start, start + this.pageSize);
    var pages = Math.max(1, Math.ceil(this.shown.length / this.pageSize));
    this.pageInfo.textContent = "page " + (this.page + 1) + " of " + pages;
    var frag = document.createDocumentFragment();
    for (var n = 0; n < slice.length; n++) frag.appendChild(this.row(slice[n]));
    this.list.replaceChildren(frag);
  };

  function tag(text, cls) {
    return el("span", "tag" + (cls ? " " + cls : ""), text);
  }

  function short(text, n) {
    if (text === null || text === undefined) return "-";
    text = String(text);
    return text.length > n ? text.slice(0, n) + "…" : text;
  }

  Explorer.prototype.row = function (index) {
    var it = this.items[index];
    var li = el("li");
    var button = el("button", "item-row" + (index === this.selected ? " selected" : ""));
    button.type = "button";
    button.dataset.index = String(index);
    add(button, el("div", "id", it.id + " #" + it.s));
    var tags = el("div", "tags");
    add(tags, tag(this.data.tasks[it.t]), tag(OUTCOME[it.o] || it.o, "o-" + it.o));
    if (it.tr) add(tags, tag("truncated", "trunc"));
    if (it.f) add(tags, tag(it.f.replace(/_/g, " "), "cause"));
    if (it.k) add(tags, tag(it.k));
    if (it.d !== null && it.d !== undefined) add(tags, tag("depth " + it.d));
    if (this.compare && it.fl && it.fl !== "same") add(tags, tag(FLIP[it.fl] || it.fl));
    add(button, tags);
    add(button, el("div", "note", "gold " + short(it.g, 40) + " · student " + short(it.S.a, 40)));
    li.appendChild(button);
    return li;
  };

  function section(title) {
    var box = el("div", "block");
    add(box, el("h4", null, title));
    return box;
  }

  /* Text with the extracted answer (its last occurrence) in a <mark>. */
  function marked(cls, text, answer) {
    var pre = el("pre", cls);
    var at = answer ? text.lastIndexOf(answer) : -1;
    if (at < 0) {
      pre.textContent = text;
      return { node: pre, found: false };
    }
    add(pre, text.slice(0, at), el("mark", "answer", answer), text.slice(at + answer.length));
    return { node: pre, found: true };
  }

  Explorer.prototype.side = function (label, cls, side) {
    var box = el("div", "side " + cls);
    if (!side) {
      add(box, el("h4", null, label), el("p", "note", "no record of this item"));
      return box;
    }
    add(box, el("h4", null, label + (side.m ? " · " + side.m : "")));
    var verdict = side.c === true ? "right" : side.c === false ? "wrong" : "not graded";
    var line = el("p", "answer-line");
    add(line, "answer: ");
    if (side.a !== null && side.a !== undefined) add(line, el("mark", "answer", side.a));
    else add(line, el("em", null, "none extracted"));
    add(line, " ", el("span", "verdict " + verdict, verdict));
    box.appendChild(line);
    var facts = [side.n + " " + (side.nu || "tokens"), "finish " + side.f];
    if (side.tr) facts.push("truncated");
    if (side.e) facts.push("extracted by " + side.e + (side.l ? " (lenient)" : ""));
    if (side.err) facts.push("error: " + side.err);
    add(box, el("p", "note", facts.join(" · ")));
    var answerText = this.text(side.x) || "";
    var reasoning = this.text(side.r);
    var shown = marked("text answer-text", answerText, side.a);
    if (reasoning !== null) {
      add(box, el("div", "label note", "answer part"), shown.node);
      var details = el("details", "chain");
      add(details, el("summary", null, "reasoning (" + reasoning.length + " characters)"));
      details.appendChild(marked("chain-text", reasoning, shown.found ? null : side.a).node);
      box.appendChild(details);
    } else {
      var whole = el("details", "chain");
      whole.open = answerText.length < 4000;
      add(whole, el("summary", null, "output (" + answerText.length + " characters; no separate reasoning)"));
      whole.appendChild(shown.node);
      box.appendChild(whole);
    }
    return box;
  };

  /* Steps as [gap, length] pairs after the previous placed step (-1: cut out): offsets. */
  function offsets(pairs) {
    var out = [], end = 0;
    for (var i = 0; i < pairs.length; i += 2) {
      if (pairs[i] < 0) { out.push(-1, -1); continue; }
      var s = end + pairs[i];
      end = s + pairs[i + 1];
      out.push(s, end);
    }
    return out;
  }

  function stepText(chain, spans, own, i) {
    if (own && own[i]) return own[i];
    var s = spans[2 * i], e = spans[2 * i + 1];
    if (s < 0) return null;
    return chain.slice(s, e);
  }

  Explorer.prototype.aligned = function (it) {
    var box = section("Matched steps (teacher | cosine | student)");
    if (!it.al || !it.T) {
      var why = this.data.aligned ? "This pair has no chains to align." : "Steps are not aligned for this report (see the note above).";
      add(box, el("p", "note", why));
      return box;
    }
    var al = it.al;
    var tChain = this.text(it.T.r !== null && it.T.r !== undefined ? it.T.r : it.T.x) || "";
    var sChain = this.text(it.S.r !== null && it.S.r !== undefined ? it.S.r : it.S.x) || "";
    var ts = offsets(al.ts), ss = offsets(al.ss);
    var nt = ts.length / 2, ns = ss.length / 2;
    var details = el("details", "aligned-steps");
    details.open = true;
    add(details, el("summary", null, al.m.length + " of " + nt + " teacher steps matched by the student's " + ns + " steps"));
    var table = el("table", "aligned");
    var cut = 0;
    function cell(chain, spans, own, i) {
      if (i === null) return el("td", "step gap");
      var t = stepText(chain, spans, own, i);
      if (t === null) { cut++; return el("td", "step note", "(step " + (i + 1) + " is in the part of the chain the report leaves out)"); }
      return el("td", "step", (i + 1) + ". " + t);
    }
    function row(i, j, sim) {
      var tr = el("tr", sim === null ? "only" : "match");
      add(tr, cell(tChain, ts, al.to, i), el("td", "sim", sim === null ? "" : sim.toFixed(2)), cell(sChain, ss, al.so, j));
      table.appendChild(tr);
    }
    var ti = 0, sj = 0;
    var matches = al.m.concat([[nt, ns, null]]);
    for (var k = 0; k < matches.length; k++) {
      var m = matches[k];
      while (ti < m[0]) row(ti++, null, null);
      while (sj < m[1]) row(null, sj++, null);
      if (m[2] !== null) { row(m[0], m[1], m[2]); ti = m[0] + 1; sj = m[1] + 1; }
    }
    details.appendChild(table);
    box.appendChild(details);
    if (cut) add(box, el("p", "note", cut + " steps fall in the middle of a long chain that the report leaves out."));
    return box;
  };

  Explorer.prototype.variants = function (index) {
    var it = this.items[index];
    var members = this.family[it.t + "|" + (it.p || it.id) + "|" + it.s] || [index];
    var box = section("Variants of this problem (sample " + it.s + ")");
    if (members.length < 2) {
      add(box, el("p", "note", "No other variant of this problem in the run."));
      return box;
    }
    var ul = el("ul", "variants");
    var self = this;
    function mark(c) { return c === true ? "✓" : c === false ? "✗" : "–"; }
    members.forEach(function (i) {
      var v = self.items[i];
      var b = el("button", i === index ? "current" : null);
      b.type = "button";
      b.dataset.index = String(i);
      b.textContent = (v.k || "original") + " · " + v.id + " · teacher " + mark(v.T ? v.T.c : null) +
        " · student " + mark(v.S.c) + (v.f ? " · " + v.f.replace(/_/g, " ") : "");
      b.addEventListener("click", function () { self.open(i); });
      add(ul, add(el("li"), b));
    });
    box.appendChild(ul);
    return box;
  };

  Explorer.prototype.open = function (index) {
    var it = this.items[index];
    if (!it) return;
    this.selected = index;
    var prev = this.list.querySelectorAll(".item-row.selected");
    for (var p = 0; p < prev.length; p++) prev[p].classList.remove("selected");
    var now = this.list.querySelector('.item-row[data-index="' + index + '"]');
    if (now) now.classList.add("selected");
    var d = this.detail;
    var frag = document.createDocumentFragment();
    add(frag, el("h3", "mono", it.id + " #" + it.s));
    var facts = [this.data.tasks[it.t], OUTCOME[it.o] || it.o];
    if (it.k) facts.push("perturbation " + it.k + (it.p ? " of " + it.p : ""));
    if (it.d !== null && it.d !== undefined) facts.push("depth " + it.d);
    if (it.sub) facts.push("subset " + it.sub);
    if (it.tr) facts.push("truncated");
    if (it.f) facts.push("failure: " + it.f.replace(/_/g, " ") + (typeof it.fp === "number" ? " (p " + it.fp.toFixed(2) + ")" : ""));
    if (this.compare) facts.push("B: " + (FLIP[it.fl] || it.fl));
    add(frag, el("p", "note", facts.join(" · ")));
    var q = section("Problem");
    add(q, el("pre", "question", this.text(it.q) || ""));
    add(q, add(el("p", null, "gold: "), el("code", "gold", it.g)));
    frag.appendChild(q);
    var sides = el("div", "sides");
    add(sides, this.side("teacher", "teacher", it.T));
    add(sides, this.side(this.compare ? "student A (" + this.data.run + ")" : "student", "student", it.S));
    if (this.compare) add(sides, this.side("student B (" + this.data.other + ")", "compare", it.B));
    frag.appendChild(sides);
    frag.appendChild(this.aligned(it));
    if (it.ev && it.ev.length) {
      var ev = section("Failure evidence");
      var ul = el("ul", "evidence");
      it.ev.forEach(function (line) { add(ul, el("li", null, line)); });
      ev.appendChild(ul);
      frag.appendChild(ev);
    }
    frag.appendChild(this.variants(index));
    d.replaceChildren(frag);
    d.dataset.index = String(index);
    if (d.scrollIntoView) d.scrollIntoView({ block: "nearest" });
  };

  /* --- start ------------------------------------------------------------------------- */

  function fail(err) {
    if (status) {
      status.textContent = "The report could not be drawn: " + (err && err.message ? err.message : String(err));
      status.className = "error";
    }
    root.dataset.ready = "error";
  }

  function main() {
    var data = readData();
    var figures = new Figures(data);
    window.harnessFigures = figures;
    return unpack(data).then(function () {
      window.harnessReport = new Explorer(data, data.texts);
      return figures.start();
    }).then(function () {
      if (status) {
        status.textContent = data.items.length + " items" + (data.texts_cut ? "; " + data.texts_cut +
          " texts longer than " + data.text_cap + " characters are shortened in the middle (records.jsonl has them whole)" : "");
        status.className = "note";
      }
      root.dataset.readyMs = String(Math.round(performance.now()));
      root.dataset.ready = "true";
    });
  }

  try {
    main().catch(fail);
  } catch (err) {
    fail(err);
  }
})();
