/* Renders the chart containers and makes tables sortable. Subscribed to Material's document$,
 * which emits once per page load (instant navigation is off). Charts carry their Vega-Lite spec
 * inline in <script type="application/json">, so the site works offline and from file://. */
document$.subscribe(function () {
  document.querySelectorAll("div.ham-chart").forEach(function (container) {
    if (container.dataset.rendered) return;
    container.dataset.rendered = "pending";
    var source = container.querySelector('script[type="application/json"]');
    var view = document.createElement("div");
    view.className = "ham-chart__view";
    container.appendChild(view);
    var options = {
      renderer: "svg",
      actions: { export: true, source: false, compiled: false, editor: false },
    };
    vegaEmbed(view, JSON.parse(source.textContent), options)
      .then(function () { container.dataset.rendered = "done"; })
      .catch(function (error) {
        container.dataset.rendered = "failed";
        view.textContent = "This chart could not be drawn: " + error;
        console.error(error);
      });
  });
  document.querySelectorAll("div.ham-sortable table").forEach(function (table) {
    if (table.dataset.sortable) return;
    table.dataset.sortable = "yes";
    new Tablesort(table);
  });
});
