// The application's routes and the frame around them. Signed out, every
// path shows the login, which returns to that path afterwards.

import { LocationProvider, Route, Router, useLocation } from 'preact-iso';
import { useEffect, useState } from 'preact/hooks';
import { whenUnauthenticated } from './api';
import { Header } from './components/header';
import { useApp } from './context';
import { Login } from './pages/login';
import { Reading } from './pages/reading';
import { Register } from './pages/register';
import { SiteRequests } from './pages/site-requests';
import { Worklist } from './pages/worklist';

export function App() {
  return (
    <LocationProvider>
      <Shell />
    </LocationProvider>
  );
}

function Shell() {
  const { user, setUser, t } = useApp();
  const location = useLocation();
  const [notice, setNotice] = useState<string | undefined>(undefined);
  useEffect(() => {
    // A session that ends while the page is open (expiry, logout in another
    // tab) brings the login back, then returns here.
    whenUnauthenticated(() => setUser(null));
  }, [setUser]);
  if (!user) return <Login expired={location.path !== '/' && location.path !== '/login'} />;
  return (
    <div class="shell">
      <Header />
      <main class="content">
        <Router>
          {/* preact-iso's Router reads its direct children: routes are listed, not wrapped in fragments. */}
          {user.roles.includes('site_user')
            ? [
                <Route key="home" path="/" component={() => <SiteRequests {...(notice ? { notice } : {})} />} />,
                <Route key="login" path="/login" component={() => <SiteRequests />} />,
                <Route
                  key="register"
                  path="/register"
                  component={() => (
                    <Register
                      onRegistered={request => setNotice(t('register.done', { id: request.id, accession: request.accession_number ?? '—' }))}
                    />
                  )}
                />,
              ]
            : [<Route key="home" path="/" component={Worklist} />, <Route key="login" path="/login" component={Worklist} />]}
          <Route path="/read/:id" component={Reading} />
          <Route default component={() => <NotFound text={t('error.notFound')} back={t('error.back')} />} />
        </Router>
      </main>
    </div>
  );
}

function NotFound(props: { text: string; back: string }) {
  return (
    <section class="empty-page">
      <p>{props.text}</p>
      <a href="/">{props.back}</a>
    </section>
  );
}
