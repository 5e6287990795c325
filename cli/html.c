/*
 * html.c - the report as one self-contained HTML page: inline SVG plots,
 * no script, no fetch, so it opens offline and from an e-mail attachment.
 */
#include "cli.h"

#include <math.h>
#include <string.h>

#define W 860
#define H 260
#define ML 70   /* left margin, for the size axis */
#define MR 20
#define MT 30
#define MB 36
#define MAX_POINTS 1200

static const char *const palette[] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
	"#bcbd22", "#7f7f7f", "#393b79", "#ad494a", "#637939", "#8c6d31", "#843c39", "#7b4173",
};

static void esc(FILE *out, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", out); break;
		case '>': fputs("&gt;", out); break;
		case '&': fputs("&amp;", out); break;
		case '"': fputs("&quot;", out); break;
		default: fputc(*s, out); break;
		}
	}
}

/* A round step for an axis spanning max: 1, 2 or 5 times a power of ten (or of 1024 for sizes). */
static double nice_step(double max, int ticks, bool bytes)
{
	double raw = max / ticks, base, unit = 1;

	if (raw <= 0)
		return 1;
	if (bytes) {
		while (raw >= 1024 * unit && unit < 1099511627776.0)
			unit *= 1024;
		raw /= unit;
	}
	base = pow(10, floor(log10(raw)));
	if (raw / base <= 1)
		return base * unit;
	if (raw / base <= 2)
		return 2 * base * unit;
	if (raw / base <= 5)
		return 5 * base * unit;
	return 10 * base * unit;
}

struct series {
	const char *name;
	const char *color;
	const uint64_t *v;      /* values, stride apart */
	size_t stride;
	bool dashed;
};

struct chart {
	const char *title;
	const struct cohort_recording *r;
	struct series s[24];
	int ns;
	uint64_t hline;         /* a limit drawn across, 0 none */
	const char *hline_label;
};

static void chart(FILE *out, const struct chart *c)
{
	const struct cohort_recording *r = c->r;
	double tmax = r->duration > 0 ? r->duration : 1, ymax = (double)c->hline, step, tstep;
	size_t every = r->nsamples > MAX_POINTS ? r->nsamples / MAX_POINTS + 1 : 1;
	char lab[32];

	double dmax = 0;
	bool limit_off = false;

	for (int k = 0; k < c->ns; k++)
		for (size_t i = 0; i < r->nsamples; i++)
			if ((double)c->s[k].v[i * c->s[k].stride] > dmax)
				dmax = (double)c->s[k].v[i * c->s[k].stride];
	/* A limit far above the data would flatten it: then the limit is only named. */
	if (c->hline && (double)c->hline > 4 * dmax && dmax > 0) {
		limit_off = true;
		ymax = dmax;
	} else if (dmax > ymax) {
		ymax = dmax;
	}
	if (ymax <= 0)
		ymax = 1 << 20;
	ymax *= 1.08;
	step = nice_step(ymax, 5, true);
	tstep = nice_step(tmax, 8, false);

#define X(t) (ML + (W - ML - MR) * ((t) / tmax))
#define Y(v) (H - MB - (H - MT - MB) * ((double)(v) / ymax))
	fprintf(out, "<figure class=\"chart\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
	        "height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", W, H, W, H);
	esc(out, c->title);
	fprintf(out, "\">\n<text x=\"%d\" y=\"18\" class=\"title\">", ML);
	esc(out, c->title);
	fputs("</text>\n", out);
	/* Axes and grid. */
	for (double v = 0; v <= ymax; v += step) {
		fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>"
		        "<text x=\"%d\" y=\"%.1f\" class=\"ylab\">%s</text>\n", ML, W - MR, Y(v), Y(v),
		        ML - 6, Y(v) + 4, cohort_size_format((uint64_t)v, lab, sizeof(lab)));
	}
	for (double t = 0; t <= tmax; t += tstep)
		fprintf(out, "<text x=\"%.1f\" y=\"%d\" class=\"xlab\">%gs</text>\n", X(t), H - MB + 16, t);
	fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" class=\"axis\"/>\n", ML, W - MR,
	        H - MB, H - MB);
	/* Events on the time axis. */
	for (size_t i = 0; i < r->nevents; i++) {
		const struct cohort_rec_event *e = &r->events[i];

		if (strcmp(e->kind, "spawn") == 0 || strcmp(e->kind, "exit") == 0 ||
		    strcmp(e->kind, "crash_info") == 0)
			continue;
		fprintf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"event ev-%s\">"
		        "<title>", X(e->t), X(e->t), MT, H - MB, e->kind);
		esc(out, e->message);
		fprintf(out, "</title></line><text x=\"%.1f\" y=\"%d\" class=\"evlab\">%s", X(e->t) + 2,
		        MT + 8, e->kind);
		if (e->rank >= 0)
			fprintf(out, " %d", e->rank);
		fputs("</text>\n", out);
	}
	if (c->hline && limit_off) {
		fprintf(out, "<text x=\"%d\" y=\"%d\" class=\"limlab\">", W - MR - 4, MT - 8);
		esc(out, c->hline_label);
		fprintf(out, " %s: far above, not drawn</text>\n", cohort_size_format(c->hline, lab, sizeof(lab)));
	} else if (c->hline) {
		fprintf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"limit\"/>"
		        "<text x=\"%d\" y=\"%.1f\" class=\"limlab\">", ML, W - MR, Y(c->hline), Y(c->hline),
		        W - MR - 4, Y(c->hline) - 4);
		esc(out, c->hline_label);
		fprintf(out, " %s</text>\n", cohort_size_format(c->hline, lab, sizeof(lab)));
	}
	/* Series. */
	for (int k = 0; k < c->ns; k++) {
		const struct series *s = &c->s[k];

		fprintf(out, "<polyline class=\"series%s\" stroke=\"%s\" data-name=\"", s->dashed ? " dashed" : "",
		        s->color);
		esc(out, s->name);
		fputs("\" points=\"", out);
		for (size_t i = 0; i < r->nsamples; i += every)
			fprintf(out, "%.1f,%.1f ", X(r->samples[i].t), Y(s->v[i * s->stride]));
		fputs("\"/>\n", out);
	}
	fputs("</svg><figcaption>", out);
	for (int k = 0; k < c->ns; k++) {
		fprintf(out, "<span class=\"key\"><i style=\"background:%s\"></i>", c->s[k].color);
		esc(out, c->s[k].name);
		fputs("</span> ", out);
	}
	fputs("</figcaption></figure>\n", out);
#undef X
#undef Y
}

/*
 * The first 24 ranks' PSS (uss false) or USS, one dense series per rank
 * built from the worker's own points (0 where a sample did not list it):
 * 24 x samples, however many workers the header claims.
 */
static void worker_chart(FILE *out, const struct cohort_recording *r, bool uss, const char *title)
{
	struct chart c = { .title = title, .r = r, .hline = r->mem_per_worker,
	                   .hline_label = "each worker's limit" };
	static char names[24][32];
	size_t ns = r->nsamples ? r->nsamples : 1;
	uint64_t *buf = calloc(24 * ns, sizeof(uint64_t));

	if (!buf)
		return;
	for (unsigned k = 0; k < r->nworkers && c.ns < 24; k++) {
		const struct cohort_rec_worker *w = &r->workers[k];
		uint64_t *v = buf + (size_t)c.ns * ns;

		for (size_t i = 0; i < w->nseries; i++)
			if (w->series[i].sample < r->nsamples)
				v[w->series[i].sample] = uss ? w->series[i].uss : w->series[i].pss;
		snprintf(names[c.ns], sizeof(names[0]), "rank %u", k);
		c.s[c.ns] = (struct series){ names[c.ns], palette[k % 16], v, 1, false };
		c.ns++;
	}
	chart(out, &c);
	free(buf);
}

static void job_chart(FILE *out, const struct cohort_recording *r, uint64_t *buf)
{
	struct chart c = { .title = "The job: cgroup usage, PSS sum and RSS sum against the limit",
	                   .r = r, .hline = r->mem_limit, .hline_label = "limit" };
	uint64_t *cg = buf, *pss = buf + r->nsamples, *rss = buf + 2 * r->nsamples;
	bool has_cg = false;

	for (size_t i = 0; i < r->nsamples; i++) {
		cg[i] = r->samples[i].cg_usage;
		pss[i] = r->samples[i].pss_sum;
		rss[i] = r->samples[i].rss_sum;
		has_cg |= r->samples[i].has_cgroup;
	}
	if (has_cg)
		c.s[c.ns++] = (struct series){ "cgroup usage (what the kernel enforces)", "#d62728", cg, 1, false };
	c.s[c.ns++] = (struct series){ "PSS sum (what the workers really use)", "#1f77b4", pss, 1, false };
	c.s[c.ns++] = (struct series){ r->slurm ? "RSS sum (what SLURM's jobacct_gather/linux charges)" :
	                               "RSS sum (shared pages once per process)", "#7f7f7f", rss, 1, true };
	chart(out, &c);
}

/* "every 1 s", or "every 0.1 to 1 s" from the actual spacing of the samples. */
static void spacing(const struct cohort_recording *r, char *buf, size_t size)
{
	double lo = -1, hi = -1;

	for (size_t i = 1; i < r->nsamples; i++) {
		double d = r->samples[i].t - r->samples[i - 1].t;

		if (d <= 0)
			continue;
		if (lo < 0 || d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	if (lo < 0)
		buf[0] = '\0';
	else if (hi < lo * 1.25)
		snprintf(buf, size, ", every %.2g s", (lo + hi) / 2);
	else
		snprintf(buf, size, ", every %.2g to %.2g s", lo, hi);
}

int cli_write_html(FILE *out, struct cohort_recording *const *recs, size_t nrecs,
                   const struct cohort_finding *f, size_t nf)
{
	char a[32], b[32], c[32], st[96], every[64];

	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<title>cohort report</title>\n<style>\n"
	      "body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:900px;color:#222}\n"
	      "h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}\n"
	      "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right}th{background:#f3f3f3}\n"
	      "td:first-child,th:first-child{text-align:left}\n"
	      ".finding{border-left:4px solid #d62728;padding:4px 12px;margin:10px 0;background:#fff6f6}\n"
	      ".finding.trend{border-color:#ff7f0e;background:#fffaf2}.finding.note{border-color:#7f7f7f;background:#f7f7f7}\n"
	      ".kind{font-weight:bold;font-family:monospace}.fix{color:#225;margin-top:4px}\n"
	      ".chart svg{background:#fff;border:1px solid #eee}.title{font-weight:bold;font-size:13px}\n"
	      ".grid{stroke:#eee}.axis{stroke:#999}.ylab{font-size:10px;text-anchor:end;fill:#555}\n"
	      ".xlab{font-size:10px;text-anchor:middle;fill:#555}.series{fill:none;stroke-width:1.6}\n"
	      ".dashed{stroke-dasharray:5 3}.limit{stroke:#000;stroke-dasharray:2 2}\n"
	      ".limlab{font-size:10px;text-anchor:end}.event{stroke:#ff7f0e;stroke-dasharray:3 3}\n"
	      ".ev-oom_kill,.ev-limit{stroke:#d62728}.evlab{font-size:9px;fill:#a50}\n"
	      ".key{margin-right:1em;font-size:12px}.key i{display:inline-block;width:12px;height:3px;"
	      "vertical-align:middle;margin-right:4px}\n"
	      "</style></head><body>\n<h1>cohort report</h1>\n", out);

	fputs("<h2>Findings</h2>\n", out);
	if (nf == 0)
		fputs("<p id=\"no-findings\">None: every worker ended well and nothing went wrong on the way.</p>\n", out);
	for (size_t i = 0; i < nf; i++) {
		const char *cls = f[i].kind == COHORT_FINDING_LEAK || f[i].kind == COHORT_FINDING_COW_UNSHARE ||
		                  f[i].kind == COHORT_FINDING_OVERSUBSCRIBED ? " trend" :
		                  f[i].kind == COHORT_FINDING_CUT || f[i].kind == COHORT_FINDING_EXIT_NONZERO ?
		                  " note" : "";

		fprintf(out, "<div class=\"finding%s\" data-kind=\"%s\"><span class=\"kind\">%s</span>", cls,
		        cohort_finding_name(f[i].kind), cohort_finding_name(f[i].kind));
		if (f[i].rank >= 0)
			fprintf(out, " rank %d", f[i].global_rank);
		if (f[i].task >= 0)
			fprintf(out, " (task %ld)", f[i].task);
		if (nrecs > 1 && strcmp(recs[0]->host, recs[nrecs - 1]->host) != 0) {
			fputs(" on ", out);
			esc(out, f[i].host);
		}
		fputs("<div>", out);
		esc(out, f[i].message);
		fputs("</div><div class=\"fix\">Fix: ", out);
		esc(out, f[i].fix);
		fputs("</div>", out);
		if (f[i].backtrace[0]) {
			fputs("<pre class=\"bt\">", out);
			esc(out, f[i].backtrace);
			fputs("</pre>", out);
		}
		fputs("</div>\n", out);
	}

	for (size_t n = 0; n < nrecs; n++) {
		const struct cohort_recording *r = recs[n];
		uint64_t *buf = calloc(3 * (r->nsamples ? r->nsamples : 1), sizeof(uint64_t));

		if (!buf)
			return -1;
		fputs("<h2>", out);
		esc(out, r->host);
		fprintf(out, ": %u worker%s, ", r->nworkers, r->nworkers == 1 ? "" : "s");
		esc(out, r->command);
		fputs("</h2>\n<p>", out);
		fprintf(out, "Job <b>");
		esc(out, r->job);
		fprintf(out, "</b>; memory limit %s (", cohort_size_format(r->mem_limit, a, sizeof(a)));
		esc(out, r->mem_limit_source);
		fprintf(out, "), budget %s, each worker %s, enforced by <b>", cohort_size_format(r->budget, b, sizeof(b)),
		        cohort_size_format(r->mem_per_worker, c, sizeof(c)));
		esc(out, r->enforce);
		spacing(r, every, sizeof(every));
		fprintf(out, "</b>; %.1f s, %zu sample%s%s%s%s.</p>\n", r->duration, r->nsamples,
		        r->nsamples == 1 ? "" : "s", every, r->ended ? "" : "; <b>the recording was cut</b> (the supervisor was killed)",
		        r->bad_lines ? "; some lines were unreadable and skipped" : "");
		fputs("<table><tr><th>rank</th><th>pid</th><th>end</th><th>peak RSS</th><th>peak PSS</th>"
		      "<th>peak USS</th></tr>\n", out);
		for (unsigned k = 0; k < r->nworkers; k++) {
			const struct cohort_rec_worker *w = &r->workers[k];

			fprintf(out, "<tr><td>%d</td><td>%d</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			        (int)(r->task.rank_offset + w->rank), (int)w->pid, cli_worker_status(r, w, st, sizeof(st)),
			        cohort_size_format(w->peak_rss, a, sizeof(a)),
			        cohort_size_format(w->peak_pss, b, sizeof(b)),
			        cohort_size_format(w->peak_uss, c, sizeof(c)));
		}
		fputs("</table>\n", out);
		if (r->nsamples) {
			job_chart(out, r, buf);
			worker_chart(out, r, false, "Each worker's PSS (its fair share of memory)");
			worker_chart(out, r, true, "Each worker's USS (memory only it holds)");
		} else {
			fputs("<p>No samples were recorded.</p>\n", out);
		}
		free(buf);
	}
	fputs("<p style=\"color:#888;font-size:12px\">Made by cohort " COHORT_VERSION_STRING
	      " from the recordings of cohort run.</p>\n</body></html>\n", out);
	return ferror(out) ? -1 : 0;
}
